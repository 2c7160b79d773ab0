"""Traffic providers: one interface, a registry, declared capabilities.

Each provider turns a desired `Split` (who answers how much, what is mirrored) into
objects in the cluster and checks that they are in place. Strategies never know which
provider runs; the reconciler refuses, with a condition, a strategy that needs a
capability the chosen provider lacks — never a silent no-op.
"""
