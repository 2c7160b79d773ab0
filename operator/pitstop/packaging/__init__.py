"""Model packages: a trained estimator plus everything needed to serve and watch it.

A package is a BentoML model whose files hold the estimator and a `Manifest`
(signature, data profile, data version, training metadata, digest). The pure parts
(`signature`, `profile`, `drift`, `lineage`, `manifest`, `digest`) import neither
bentoml, kopf nor kubernetes, so the operator and the serving template can read them
cheaply; `store` and `bento` are the only modules that talk to BentoML.
"""
