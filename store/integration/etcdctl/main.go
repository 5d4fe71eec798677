// Command etcdctl is the real etcdctl, built from etcd's own module, so the
// kvnode tests can check kvnode against the tool operators use. It lives in a
// nested module so the main go.mod does not carry etcdctl's dependencies.
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
