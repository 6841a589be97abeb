"""Deployment configuration: container image, KubeRay manifests, cluster launcher, multi-node run."""
