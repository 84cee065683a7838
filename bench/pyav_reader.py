#!/usr/bin/env python3
"""PyAV reader of a Chrysalis Redis frame cache: the peer of
BenchmarkReplayRedis (see README.md).

It reads one camera's whole cache the way the Chrysalis Python SDK's stack
does: redis-py XRANGE pages over in_memory_queue_<cam>, protobuf parsing of
each VideoFrame, a PyAV h264 CodecContext opened with the extradata of
codec_video_info<cam>, and frame.to_ndarray(format='bgr24') for every frame.

The protobuf classes are built at run time from a FileDescriptorSet written
by the Go benchmark (the project's internal/pb schema), so no protoc is
needed and the fast (C++/upb) protobuf backend parses, as generated code
would.

Output: one JSON line {"frames", "seconds", "cpu_seconds", ...}, both times
from the codec GET to the last image (wall clock, and process CPU time of
every thread): interpreter start-up and imports are not timed.
`--check` only verifies the imports and prints the versions.
"""

import argparse
import json
import sys
import time


def imports():
    import av  # noqa: F401
    import numpy  # noqa: F401
    import redis  # noqa: F401
    from google.protobuf.internal import api_implementation

    return "python %s, PyAV %s, redis-py %s, protobuf %s (%s), numpy %s" % (
        sys.version.split()[0],
        av.__version__,
        redis.__version__,
        __import__("google.protobuf").protobuf.__version__,
        api_implementation.Type(),
        numpy.__version__,
    )


def message_classes(path):
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    with open(path, "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    get = getattr(message_factory, "GetMessageClass", None)
    factory = None if get else message_factory.MessageFactory(pool)

    def cls(name):
        d = pool.FindMessageTypeByName(name)
        return get(d) if get else factory.GetPrototype(d)

    return cls("chrysalis.VideoFrame"), cls("chrysalis.VideoCodec")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--addr", default="127.0.0.1:6379")
    ap.add_argument("--camera")
    ap.add_argument("--descriptor")
    ap.add_argument("--page", type=int, default=128, help="XRANGE COUNT, as the Go client's page")
    ap.add_argument(
        "--thread-type",
        default="default",
        help="PyAV thread_type: 'default' leaves PyAV's own (SLICE in PyAV 10), as the Python SDK "
        "does (av.Codec('h264', 'r').create()); AUTO is frame+slice threading, like the Go decoder",
    )
    args = ap.parse_args()
    if args.check:
        print(imports())
        return

    import av
    import redis

    VideoFrame, VideoCodec = message_classes(args.descriptor)
    host, port = args.addr.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    r.ping()

    began, cpu0 = time.perf_counter(), time.process_time()
    vc = VideoCodec.FromString(r.get("codec_video_info" + args.camera))
    ctx = av.CodecContext.create(vc.name, "r")
    ctx.extradata = vc.extradata
    if args.thread_type != "default":
        ctx.thread_type = args.thread_type
        ctx.thread_count = 0  # one thread per CPU, as FFmpeg's default

    frames = 0
    touched = 0

    def use(frame):
        nonlocal frames, touched
        img = frame.to_ndarray(format="bgr24")
        touched += int(img[img.shape[0] // 2, 0, 0])
        frames += 1

    key = "in_memory_queue_" + args.camera
    start = "-"
    while True:
        entries = r.xrange(key, min=start, max="+", count=args.page)
        for _, fields in entries:
            vf = VideoFrame.FromString(fields[b"data"])
            pkt = av.Packet(vf.data)
            pkt.pts = vf.pts
            pkt.dts = vf.dts
            for frame in ctx.decode(pkt):
                use(frame)
        if len(entries) < args.page:
            break
        start = "(" + entries[-1][0].decode()
    for frame in ctx.decode(None):
        use(frame)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu0
    print(
        json.dumps(
            {
                "frames": frames,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "thread_type": str(ctx.thread_type),
                "touched": touched,
            }
        )
    )


if __name__ == "__main__":
    main()
