"""k8s-sim: a real Kubernetes control plane (etcd, API server, controllers, scheduler, KWOK nodes)
built from Go modules and run as local processes on 127.0.0.1, for tests."""
