#!/usr/bin/env python3
"""A careful PyAV live loop over a Chrysalis Redis frame cache: the peer of
BenchmarkLiveFrameAge (see README.md).

The way a careful user of the Python stack gets the newest image at a slow
consumer: start at the newest keyframe (memory_iframe_list_<cam>), then on
every wake-up XREAD every packet that arrived since the last one (blocking
only when none did), decode them all (P-frames need every packet), convert
only the newest decoded frame with frame.to_ndarray(format='bgr24'), and
hand it to the work (a sleep). A frame is never returned twice.

Age = now - the frame's capture time (VideoFrame.timestamp, the ingest's
stamp, as Chrysalis's image time) after the conversion. The decoder's
threading defaults to PyAV's (SLICE in PyAV 10; these streams have one
slice per frame), as Chrysalis's live decoder uses one thread: frame
threading would hold each frame back by thread_count - 1 packets.

Output: one JSON line {"ages_ms", "ids", "at_us", "not_newer", "seconds",
"cpu_seconds"} (ids and at_us: each image's cache id and the wall-clock
time, Unix µs, it was handed to the work);
the times cover the consuming loop only (imports and the first keyframe's
decode before it are excluded).
"""

import argparse
import json
import time

from pyav_reader import message_classes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", default="127.0.0.1:6379")
    ap.add_argument("--camera", required=True)
    ap.add_argument("--descriptor", required=True)
    ap.add_argument("--for", dest="dur", type=float, default=10.0, help="seconds")
    ap.add_argument("--work", type=float, default=0.2, help="seconds of work per image")
    ap.add_argument("--thread-type", default="default")
    args = ap.parse_args()

    import av
    import redis

    VideoFrame, VideoCodec = message_classes(args.descriptor)
    host, port = args.addr.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    qkey = "in_memory_queue_" + args.camera

    vc = VideoCodec.FromString(r.get("codec_video_info" + args.camera))
    ctx = av.CodecContext.create(vc.name, "r")
    ctx.extradata = vc.extradata
    if args.thread_type != "default":
        ctx.thread_type = args.thread_type
        ctx.thread_count = 0

    stamps = {}  # pts -> (capture ms, entry id) of packets not yet out
    newest = [None, None, None]  # frame, capture ms, entry id

    def decode(entries):
        for eid, fields in entries:
            vf = VideoFrame.FromString(fields[b"data"])
            pkt = av.Packet(vf.data)
            pkt.pts, pkt.dts = vf.pts, vf.dts
            stamps[vf.pts] = (vf.timestamp, eid)
            for frame in ctx.decode(pkt):
                ts, fid = stamps.pop(frame.pts, (None, None))
                if ts is not None:
                    newest[:] = [frame, ts, fid]
        return entries[-1][0] if entries else None

    # Start at the newest keyframe.
    idx = r.xrevrange("memory_iframe_list_" + args.camera, "+", "-", count=1)
    start = idx[0][0] if idx else b"-"
    last = decode(r.xrange(qkey, min=start, max="+")) or b"0-0"

    ages, ids, at_us, returned, not_newer, touched = [], [], [], None, 0, 0
    began, cpu0 = time.perf_counter(), time.process_time()
    end = began + args.dur
    while time.perf_counter() < end:
        # Everything since the last packet, without blocking...
        got = r.xread({qkey: last}, count=10000)
        entries = got[0][1] if got else []
        # ...and when nothing new was decoded, wait for the next packet.
        while True:
            if entries:
                last = decode(entries)
            if newest[0] is not None and newest[2] != returned:
                break
            got = r.xread({qkey: last}, count=10000, block=1000)
            entries = got[0][1] if got else []
            if time.perf_counter() >= end:
                break
        if newest[0] is None or newest[2] == returned:
            break
        img = newest[0].to_ndarray(format="bgr24")
        touched += int(img[img.shape[0] // 2, 0, 0])
        now = time.time()
        ages.append(now * 1000 - newest[1])
        ids.append(newest[2].decode())
        at_us.append(int(now * 1e6))
        if returned is not None and id_key(newest[2]) <= id_key(returned):
            not_newer += 1
        returned = newest[2]
        newest[0] = None  # the decoded frame is not kept once converted
        time.sleep(args.work)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu0
    print(
        json.dumps(
            {
                "ages_ms": ages,
                "ids": ids,
                "at_us": at_us,
                "not_newer": not_newer,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "touched": touched,
            }
        )
    )


def id_key(eid):
    ms, seq = eid.split(b"-")
    return int(ms), int(seq)


if __name__ == "__main__":
    main()
