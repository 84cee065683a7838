#!/bin/sh
# Regenerates the test clips with the ffmpeg CLI (Debian 12's ffmpeg 5.1).
# All clips: 25 fps, a keyframe every 2 s (GOP 50), H.264 unless named otherwise.
# Usage: sh testdata/gen.sh   (from the repository root or from testdata/)
set -eu
cd "$(dirname "$0")"
FF="ffmpeg -hide_banner -loglevel error -y"
X264="-c:v libx264 -preset veryfast -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0"

# `sh testdata/gen.sh hard DIR`: only the benchmark clips, as hard to decode
# as a busy camera (bench/README.md, "Clips"), written to DIR (make bench
# uses bench/clips, which git ignores; about 3 MB + 5 MB) when missing.
# Detail and motion over the whole frame: testsrc2 scrolling diagonally,
# averaged with a Game of Life board (new cells every frame) and temporal
# grain (noise allf=t) like a camera sensor's. H.264 High, GOP 50, no
# B-frames (most IP cameras send none), 8 s, 25 fps, 200 frames, about
# 3 Mbit/s at 720p and 5 Mbit/s at 1080p.
if [ "${1:-}" = hard ]; then
	out=${2:?usage: gen.sh hard DIR}
	mkdir -p "$out"
	hard() { # size life-size bitrate maxrate file
		[ -s "$out/$5" ] && return 0
		$FF -f lavfi -i "testsrc2=s=$1:r=25,scroll=h=0.002:v=0.001[t];life=s=$2:r=25:mold=10:ratio=0.3:death_color=#102030:life_color=#f0c080,scale=$1:flags=neighbor[l];[t][l]blend=all_mode=average,noise=alls=14:allf=t" \
			-t 8 $X264 -profile:v high -bf 0 -b:v "$3" -maxrate "$4" -bufsize "$4" -movflags +faststart "$out/$5.tmp.mp4"
		mv "$out/$5.tmp.mp4" "$out/$5"
	}
	hard 1280x720 320x180 3M 4M hard720.mp4
	hard 1920x1080 480x270 6M 8M hard1080.mp4
	exit 0
fi

# 720p and 1080p, baseline-ish (no B-frames) so decode order == display order.
$FF -f lavfi -i "testsrc2=size=1280x720:rate=25:duration=4" $X264 -bf 0 -b:v 900k -movflags +faststart clip720.mp4
$FF -f lavfi -i "testsrc2=size=1920x1080:rate=25:duration=4" $X264 -bf 0 -b:v 1300k -movflags +faststart clip1080.mp4
# Same picture with B-frames (pts != dts).
$FF -f lavfi -i "testsrc2=size=1280x720:rate=25:duration=4" $X264 -bf 2 -b:v 900k -movflags +faststart bframes720.mp4
# Resolution changes mid-stream: 2 s at 640x360 then 2 s at 1280x720, as one
# Annex-B elementary stream wrapped in MPEG-TS (MP4 cannot carry it).
$FF -f lavfi -i "testsrc2=size=640x360:rate=25:duration=2" $X264 -bf 0 -b:v 300k -bsf:v h264_mp4toannexb -f h264 part1.h264
$FF -f lavfi -i "mandelbrot=size=1280x720:rate=25" -t 2 $X264 -bf 0 -b:v 600k -bsf:v h264_mp4toannexb -f h264 part2.h264
cat part1.h264 part2.h264 > joined.h264
$FF -r 25 -i joined.h264 -c copy -f mpegts reschange.ts
rm -f part1.h264 part2.h264 joined.h264
# HEVC.
$FF -f lavfi -i "testsrc2=size=1280x720:rate=25:duration=4" -c:v libx265 -preset veryfast -pix_fmt yuv420p -x265-params "keyint=50:min-keyint=50:scenecut=0:bframes=0:log-level=error" -b:v 600k -tag:v hvc1 -movflags +faststart hevc720.mp4
ls -l

# The demo camera embedded in the binary (internal/democlip): a static scene,
# a box crossing it between 4 s and 7 s of every 10 s loop.
$FF -f lavfi -i "color=c=0x202830:s=1280x720:r=25:d=10,drawgrid=w=160:h=120:t=2:c=0x506070[bg];color=c=0xffa000:s=240x180:r=25:d=10[box];[bg][box]overlay=x='if(between(t,4,7),(t-4)*360,-400)':y=280,drawtext=text='Chrysalis demo camera %{pts\:hms}':x=40:y=40:fontsize=36:fontcolor=white" \
	$X264 -bf 0 -b:v 400k ../internal/democlip/demo.mp4
