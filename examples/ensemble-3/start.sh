#!/bin/sh
# Starts the three servers of this example in the background (logs in nodeN/paddock.log); PADDOCK overrides the binary. Stop them with: kill $(cat node*/paddock.pid)
cd "$(dirname "$0")" && for n in 1 2 3; do ${PADDOCK:-paddock} serve --config zoo$n.cfg 2>node$n/paddock.log & echo $! >node$n/paddock.pid; done
