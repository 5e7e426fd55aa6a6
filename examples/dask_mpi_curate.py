"""Curate inside an MPI allocation (e.g. a Fugaku pjsub job) on Dask.

dask-mpi turns rank 0 into the Dask scheduler, keeps rank 1 running this script as the client, and makes
every other rank a worker:

    pip install dask-mpi
    mpiexec -n 96 python examples/dask_mpi_curate.py CONFIG.yaml OUT
"""
import sys

from dask.distributed import Client
from dask_mpi import initialize

from pipeline.cli import main

if __name__ == "__main__":
    initialize(nthreads=1)
    with Client() as client:
        sys.exit(main(["curate", "--config", sys.argv[1], "--out", sys.argv[2], "--runner", "DaskRunner",
                       f"--dask_client_address={client.scheduler.address}"]))
