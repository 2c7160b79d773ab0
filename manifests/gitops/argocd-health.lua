-- Argo CD health of a pitstop.dev ModelDeployment, from the phase the operator computes.
-- Install: the `resource.customizations.health.pitstop.dev_ModelDeployment` key of
-- argocd-cm (manifests/gitops/argocd-cm.yaml carries this file verbatim).
--   Healthy      the spec's revision serves all traffic
--   Progressing  building, deploying, rolling out (held for evidence included), or the
--                operator has not yet seen the latest spec
--   Suspended    paused at a manual gate: `pitstop promote` or `pitstop abort`; or
--                decommissioned (`pitstop decommission --keep-object`): nothing serves,
--                by request, until it is removed from Git
--   Degraded     rolled back (the spec's revision was rejected: change the spec, or
--                `pitstop retry`), stable unavailable, invalid spec, failing reconciles
local hs = { status = "Progressing", message = "Waiting for the Pitstop operator" }
if obj.status == nil then
  return hs
end
local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the Pitstop operator to observe generation " .. tostring(generation)
  return hs
end
local message = status.message or ""
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Reconciled" and condition.status == "False" then
      hs.status = "Degraded"
      hs.message = (condition.reason or "ReconcileError") .. ": " .. (condition.message or "")
      return hs
    end
  end
end
local phase = status.phase
if phase == "Healthy" then
  hs.status = "Healthy"
elseif phase == "Paused" or phase == "Decommissioned" then
  hs.status = "Suspended"
elseif phase == "RolledBack" or phase == "Degraded" or phase == "Failed" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
if message ~= "" then
  hs.message = (phase or "Pending") .. ": " .. message
else
  hs.message = phase or "Pending"
end
return hs
