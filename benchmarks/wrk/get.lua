-- GET a fixed path (WRK_PATH, default /healthz): the ceiling of the HTTP stack, same run, same pinning.
local dir = debug.getinfo(1, "S").source:match("@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup
done = common.done

function init(args)
  wrk.method = "GET"
  wrk.path = os.getenv("WRK_PATH") or "/healthz"
end
