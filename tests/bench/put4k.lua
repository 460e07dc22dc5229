-- wrk script for the server's ceiling: unsigned PUTs of a 4 KiB body, each
-- to a new key, on a bucket whose ACL lets anyone write.
--   wrk -t1 -c16 -d5s -s put4k.lua http://127.0.0.1:PORT -- BUCKET
-- Keys: /BUCKET/t<thread>/o<n>. Globals, not locals: wrk copies setup()'s
-- thread:set() values into each thread's own Lua state as globals.
body = string.rep("x", 4096)
next_tid = 0

function setup(thread)
	next_tid = next_tid + 1
	thread:set("tid", next_tid)
end

function init(args)
	bucket = args[1] or "bench-wrk"
	n = 0
end

function request()
	n = n + 1
	return wrk.format("PUT", "/" .. bucket .. "/t" .. tid .. "/o" .. n,
		{ ["Content-Type"] = "application/octet-stream" }, body)
end
