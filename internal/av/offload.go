package av

// #cgo pkg-config: libavcodec
// #cgo LDFLAGS: -lpthread
// #define _GNU_SOURCE
// #include <errno.h>
// #include <pthread.h>
// #include <stdlib.h>
// #include <stdint.h>
// #include <unistd.h>
// #include <sys/eventfd.h>
// #include <libavcodec/avcodec.h>
//
// // chr_sender runs avcodec_send_packet (where a single-threaded decoder
// // does its work) on a thread of its own. The Go side hands it a job and
// // waits for the eventfd through the netpoller, so the goroutine parks
// // instead of sitting in a cgo call for milliseconds.
// typedef struct chr_sender {
//     pthread_t th;
//     pthread_mutex_t mu;
//     pthread_cond_t job_cv, done_cv;
//     AVCodecContext *cc;
//     AVPacket *pkt;
//     int job, quit, ret, efd;
// } chr_sender;
//
// static void *chr_sender_main(void *arg) {
//     chr_sender *s = arg;
//     pthread_mutex_lock(&s->mu);
//     for (;;) {
//         while (!s->job && !s->quit) pthread_cond_wait(&s->job_cv, &s->mu);
//         if (s->quit) break;
//         AVCodecContext *cc = s->cc;
//         AVPacket *pkt = s->pkt;
//         pthread_mutex_unlock(&s->mu);
//         int ret = avcodec_send_packet(cc, pkt);
//         pthread_mutex_lock(&s->mu);
//         s->ret = ret;
//         s->job = 0;
//         pthread_cond_broadcast(&s->done_cv);
//         uint64_t one = 1;
//         ssize_t n;
//         do { n = write(s->efd, &one, sizeof one); } while (n < 0 && errno == EINTR);
//     }
//     pthread_mutex_unlock(&s->mu);
//     return NULL;
// }
//
// static chr_sender *chr_sender_new(void) {
//     chr_sender *s = calloc(1, sizeof *s);
//     if (!s) return NULL;
//     s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
//     if (s->efd < 0) { free(s); return NULL; }
//     pthread_mutex_init(&s->mu, NULL);
//     pthread_cond_init(&s->job_cv, NULL);
//     pthread_cond_init(&s->done_cv, NULL);
//     if (pthread_create(&s->th, NULL, chr_sender_main, s) != 0) {
//         pthread_cond_destroy(&s->job_cv);
//         pthread_cond_destroy(&s->done_cv);
//         pthread_mutex_destroy(&s->mu);
//         close(s->efd);
//         free(s);
//         return NULL;
//     }
//     pthread_setname_np(s->th, "chrysalis-dec"); // top -H, /proc/PID/task/*/comm
//     return s;
// }
//
// static void chr_sender_submit(chr_sender *s, AVCodecContext *cc, AVPacket *pkt) {
//     pthread_mutex_lock(&s->mu);
//     s->cc = cc;
//     s->pkt = pkt;
//     s->job = 1;
//     pthread_cond_signal(&s->job_cv);
//     pthread_mutex_unlock(&s->mu);
// }
//
// // chr_sender_wait returns the job's result; it blocks only when the job
// // is not done yet (the eventfd read failed).
// static int chr_sender_wait(chr_sender *s) {
//     pthread_mutex_lock(&s->mu);
//     while (s->job) pthread_cond_wait(&s->done_cv, &s->mu);
//     int ret = s->ret;
//     pthread_mutex_unlock(&s->mu);
//     return ret;
// }
//
// // chr_sender_free stops the thread and frees s; the eventfd is the Go
// // side's to close.
// static void chr_sender_free(chr_sender *s) {
//     pthread_mutex_lock(&s->mu);
//     s->quit = 1;
//     pthread_cond_signal(&s->job_cv);
//     pthread_mutex_unlock(&s->mu);
//     pthread_join(s->th, NULL);
//     pthread_cond_destroy(&s->job_cv);
//     pthread_cond_destroy(&s->done_cv);
//     pthread_mutex_destroy(&s->mu);
//     free(s);
// }
import "C"

import (
	"errors"
	"os"
	"reflect"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// canReachPacket reports whether astiav.Packet starts with its
// *C.AVPacket field (astiav v0.16.0 has no accessor for it).
var canReachPacket = func() bool {
	t := reflect.TypeFor[astiav.Packet]()
	if t.NumField() == 0 {
		return false
	}
	f := t.Field(0)
	return f.Offset == 0 && f.Type.Kind() == reflect.Pointer &&
		f.Type.Elem().Name() == "_Ctype_struct_AVPacket" &&
		f.Type.Elem().PkgPath() == reflect.TypeFor[astiav.Packet]().PkgPath()
}()

func packetC(p *astiav.Packet) *C.AVPacket {
	if !canReachPacket || p == nil {
		return nil
	}
	return *(**C.AVPacket)(unsafe.Pointer(p))
}

// sender runs a decoder's avcodec_send_packet on a C thread of its own
// (DecoderOptions.OffThread). A goroutine in a long cgo call keeps the Go
// runtime's sysmon polling every 20 µs for the first millisecond of the
// call, then at doubling intervals: about 55 wakeups for each packet of a
// live stream decoded as it arrives, because between packets the process
// is idle and sysmon sleeps deeply. Waiting for an eventfd through the
// netpoller instead parks the goroutine: no P is held, sysmon stays asleep.
type sender struct {
	c   *C.chr_sender
	ev  *os.File
	buf [8]byte
}

func newSender() (*sender, error) {
	c := C.chr_sender_new()
	if c == nil {
		return nil, errors.New("av: starting the decode thread failed")
	}
	// A non-blocking fd: os.NewFile makes it pollable.
	return &sender{c: c, ev: os.NewFile(uintptr(c.efd), "decode-thread")}, nil
}

// send runs avcodec_send_packet(cc, pkt) on the thread and returns its
// result. cc and pkt are C memory, untouched by Go until send returns.
func (s *sender) send(cc *C.AVCodecContext, pkt *C.AVPacket) C.int {
	C.chr_sender_submit(s.c, cc, pkt)
	// The eventfd counts completed jobs; one job at a time, so one read.
	// On a read error chr_sender_wait blocks until the job is done.
	_, _ = s.ev.Read(s.buf[:])
	return C.chr_sender_wait(s.c)
}

func (s *sender) free() {
	if s == nil || s.c == nil {
		return
	}
	C.chr_sender_free(s.c)
	s.c = nil
	s.ev.Close()
}
