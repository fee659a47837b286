hs = {status = "Progressing", message = "Waiting for Liaison"}
if obj.status ~= nil and obj.status.conditions ~= nil then
  local generation = obj.metadata.generation
  local judged = generation == nil or obj.status.observedGeneration == generation
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      if not judged then
        hs.message = "Liaison has not yet judged generation " .. tostring(generation)
      elseif c.status == "True" or c.reason == "OnRequest" then
        hs.status = "Healthy"; hs.message = c.message
      elseif c.reason == "Pending" or c.reason == "Revoking" then
        hs.message = c.reason .. ": " .. c.message
      else
        hs.status = "Degraded"; hs.message = c.reason .. ": " .. c.message
      end
    end
  end
end
return hs
