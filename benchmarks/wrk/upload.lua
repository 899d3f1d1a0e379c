-- POST multipart photo uploads to /v1/complementary, every body distinct (the embedding cache never hits).
--   WRK_PHOTOS=/dir/with/*.jpg (files 0.jpg .. N-1.jpg), WRK_PHOTO_COUNT=N, WRK_PATH=/v1/complementary
-- Bytes after a JPEG's end marker are ignored by decoders but change its sha256, so a per-thread counter
-- appended to the file makes each upload new while the work per upload stays the same.
local dir = debug.getinfo(1, "S").source:match("@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local photos, path, counter, run, boundary, head, tail

setup = common.setup
done = common.done

local function read_file(name)
  local f = assert(io.open(name, "rb"), "cannot open " .. name)
  local data = f:read("*a")
  f:close()
  return data
end

function init(args)
  local root = assert(os.getenv("WRK_PHOTOS"), "set WRK_PHOTOS to a folder of 0.jpg .. N-1.jpg")
  local n = common.env_number("WRK_PHOTO_COUNT", 1)
  photos = {}
  for i = 0, n - 1 do photos[#photos + 1] = read_file(root .. "/" .. i .. ".jpg") end
  path = os.getenv("WRK_PATH") or "/v1/complementary"
  counter = 0
  run = os.getenv("WRK_SEED") or "0"  -- distinct per run, so runs never resend each other's bytes
  boundary = "wrkboundary7MA4YWxkTrZu0gW"
  local fields = ""
  for _, kv in ipairs({{"k", os.getenv("WRK_K") or "20"}, {"per_category", os.getenv("WRK_PER_CATEGORY") or "5"}}) do
    fields = fields .. "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"" .. kv[1] ..
      "\"\r\n\r\n" .. kv[2] .. "\r\n"
  end
  head = fields .. "--" .. boundary ..
    "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
  tail = "\r\n--" .. boundary .. "--\r\n"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
end

function request()
  counter = counter + 1
  local photo = photos[(counter % #photos) + 1]
  local body = head .. photo .. string.format("%s:%d:%d", run, tid or 0, counter) .. tail
  return wrk.format(nil, path, nil, body)
end
