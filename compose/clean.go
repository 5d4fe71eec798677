package compose

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/moby/moby/client"
)

// NewRunID returns a fresh run id for the LabelRun label.
func NewRunID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Removed counts what Clean removed.
type Removed struct {
	Containers, Networks, Volumes int
}

// Clean removes every container, network and volume of the run, or of
// every faultline run when runID is empty. Built images stay: they are a
// cache keyed by their inputs.
func Clean(ctx context.Context, docker *client.Client, runID string) error {
	_, err := CleanCount(ctx, docker, runID)
	return err
}

// CleanCount is Clean that also says how much it removed.
func CleanCount(ctx context.Context, docker *client.Client, runID string) (Removed, error) {
	label := LabelRun
	if runID != "" {
		label += "=" + runID
	}
	filter := client.Filters{}.Add("label", label)
	var n Removed
	var errs []error

	ctrs, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return n, fmt.Errorf("listing containers: %w", err)
	}
	for _, ctr := range ctrs.Items {
		_, err := docker.ContainerRemove(ctx, ctr.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil {
			errs = append(errs, fmt.Errorf("removing container %s: %w", ctr.ID[:12], err))
			continue
		}
		n.Containers++
	}

	nets, err := docker.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing networks: %w", err))
	} else {
		for _, nw := range nets.Items {
			if _, err := docker.NetworkRemove(ctx, nw.ID, client.NetworkRemoveOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("removing network %s: %w", nw.Name, err))
				continue
			}
			n.Networks++
		}
	}

	vols, err := docker.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing volumes: %w", err))
	} else {
		for _, v := range vols.Items {
			if _, err := docker.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				errs = append(errs, fmt.Errorf("removing volume %s: %w", v.Name, err))
				continue
			}
			n.Volumes++
		}
	}
	return n, errors.Join(errs...)
}
