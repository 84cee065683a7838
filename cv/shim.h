// C interface of shim.cpp: OpenCV's HOG people detector and cascade
// classifiers with their confidence scores, which gocv v0.32.0 does not
// return.
#ifndef CHR_CV_SHIM_H
#define CHR_CV_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
	int x, y, w, h;
	double score;
} chr_det;

// chr_result is a malloc'd array of n detections, or an error (malloc'd
// message, dets NULL). Free with chr_result_free.
typedef struct {
	chr_det *dets;
	int n;
	char *err;
} chr_result;

void chr_result_free(chr_result r);

// An image: h rows of stride bytes, w pixels of channels bytes each (1:
// gray, 3: BGR, or RGB when rgb is set). Only read during a call.
typedef struct {
	const unsigned char *data;
	int w, h, stride, channels, rgb;
} chr_img;

typedef void *chr_hog;
chr_hog chr_hog_new(void);
void chr_hog_free(chr_hog h);
chr_result chr_hog_detect(chr_hog h, chr_img img, double hit_threshold, int win_stride, double scale, double group_threshold);

typedef void *chr_cascade;
// chr_cascade_load returns NULL when the file is not a cascade.
chr_cascade chr_cascade_load(const char *path);
void chr_cascade_free(chr_cascade c);
chr_result chr_cascade_detect(chr_cascade c, chr_img img, double scale, int min_neighbors, int min_size, int equalize);

#ifdef __cplusplus
}
#endif

#endif
