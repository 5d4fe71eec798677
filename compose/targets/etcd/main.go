// Command etcd is the real etcd server, built from etcd's own Go module as a
// library so faultline can pin any release without pulling an image.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
