"""A whole Townsquare cluster on one machine: etcd, Patroni/PostgreSQL, Redis with Sentinel,
HAProxy and app nodes, each node its own process group on its own loopback address.

``layout`` says where everything listens, ``configs`` writes each program's configuration,
``nodes`` starts, stops and kills nodes, ``drills`` kills one while a workload runs.
"""
