"""The two parts of a cluster the e2e tests play themselves, and the models they serve.

`kubelet` starts a real model server for each pod KWOK reports Running; `gateway`
sends steady user traffic to the pods the operator's Services and routes select;
`models` trains and packages the scenario models; `faults` holds the wrapper
estimators that inject errors and latency. Both emulators read only the API.
"""
