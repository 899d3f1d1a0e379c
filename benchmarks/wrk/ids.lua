-- POST JSON bodies naming random catalog ids (id-based /v1/complementary or /v1/compatibility).
--   WRK_ITEMS=100000 WRK_IDS_PER_REQUEST=1 WRK_PATH=/v1/complementary WRK_EXTRA='"k": 20, "per_category": 5'
-- Ids are "s%07d" (index.synthetic), or the lines of WRK_IDS_FILE when set. The ids walk one cycle through
-- the catalog (a prime stride), starting at position WRK_OFFSET: the runner passes the number of ids earlier runs used, so no id (and no request)
-- repeats until the run has used WRK_ITEMS ids in all, and the result cache never hits. Run with -t1.
local dir = debug.getinfo(1, "S").source:match("@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local items, per_request, path, extra, counter, stride, listed

setup = common.setup
done = common.done

function init(args)
  items = common.env_number("WRK_ITEMS", 100000)
  local file = os.getenv("WRK_IDS_FILE")
  if file ~= nil and file ~= "" then
    listed = {}
    for line in io.lines(file) do
      if line ~= "" then listed[#listed + 1] = string.format("%q", line) end
    end
    items = #listed
  end
  per_request = common.env_number("WRK_IDS_PER_REQUEST", 1)
  path = os.getenv("WRK_PATH") or "/v1/complementary"
  extra = os.getenv("WRK_EXTRA") or ""
  if extra ~= "" then extra = ", " .. extra end
  -- A prime stride coprime with every catalog size used here visits each id once per cycle.
  stride = 7919
  counter = common.env_number("WRK_OFFSET", 0)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local ids = {}
  for j = 1, per_request do
    counter = counter + 1
    local pos = (counter * stride) % items
    ids[j] = listed and listed[pos + 1] or string.format('"s%07d"', pos)
  end
  local body = '{"item_ids": [' .. table.concat(ids, ", ") .. ']' .. extra .. '}'
  return wrk.format(nil, path, nil, body)
end
