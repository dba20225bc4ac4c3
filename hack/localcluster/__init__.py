"""chatenv's local Kubernetes cluster, for development and the test tiers.

Two modes share one control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, built from their Go modules and cached by version):

- **real node** (the default): containerd + runc + CNI + kubelet + kube-proxy on
  this machine, cluster DNS (CoreDNS), an ingress controller (Traefik) and a
  volume provisioner, with every image built here — environments actually run
  and are reached through their Ingress;
- **fake nodes** (``--fake-nodes``): kwok plays the kubelet for fake Nodes, for
  the fast integration tier and the scale benchmarks.

Modules: ``versions`` (what is pinned, where it is cached), ``building`` (Go
builds), ``certificates``, ``processes`` (start/stop by PID, the state file),
``controlplane``, ``fakenodes``, ``node`` (the real node), ``hoststate`` (what
the node changes on the host, and undoing it), ``images`` (image builds without a
registry), ``addons`` (pure manifests of the cluster's add-ons), ``install``
(chatenv itself onto the local cluster), ``cli``.

Standard library only: this runs before the project's dependencies exist.
"""
