#include "shim.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

static chr_result chr_error(const char *msg) {
	chr_result r = {NULL, 0, NULL};
	r.err = strdup(msg);
	return r;
}

static chr_result chr_rects(const std::vector<cv::Rect> &rs, const std::vector<double> &scores) {
	chr_result r = {NULL, 0, NULL};
	if (rs.empty()) return r;
	r.dets = (chr_det *)malloc(rs.size() * sizeof(chr_det));
	if (!r.dets) return chr_error("out of memory");
	for (size_t i = 0; i < rs.size(); i++) {
		r.dets[i].x = rs[i].x;
		r.dets[i].y = rs[i].y;
		r.dets[i].w = rs[i].width;
		r.dets[i].h = rs[i].height;
		r.dets[i].score = i < scores.size() ? scores[i] : 0;
	}
	r.n = (int)rs.size();
	return r;
}

void chr_result_free(chr_result r) {
	free(r.dets);
	free(r.err);
}

// mat wraps the caller's pixels without copying.
static cv::Mat mat(chr_img img) {
	return cv::Mat(img.h, img.w, img.channels == 1 ? CV_8UC1 : CV_8UC3, (void *)img.data, (size_t)img.stride);
}

chr_hog chr_hog_new(void) {
	try {
		cv::HOGDescriptor *h = new cv::HOGDescriptor();
		h->setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
		return h;
	} catch (...) {
		return NULL;
	}
}

void chr_hog_free(chr_hog h) { delete (cv::HOGDescriptor *)h; }

chr_result chr_hog_detect(chr_hog h, chr_img img, double hit_threshold, int win_stride, double scale, double group_threshold) {
	try {
		std::vector<cv::Rect> found;
		std::vector<double> weights;
		((cv::HOGDescriptor *)h)->detectMultiScale(mat(img), found, weights, hit_threshold, cv::Size(win_stride, win_stride),
		                                           cv::Size(0, 0), scale, group_threshold, false);
		return chr_rects(found, weights);
	} catch (const std::exception &e) {
		return chr_error(e.what());
	} catch (...) {
		return chr_error("unknown OpenCV error");
	}
}

chr_cascade chr_cascade_load(const char *path) {
	try {
		cv::CascadeClassifier *c = new cv::CascadeClassifier();
		if (!c->load(path) || c->empty()) {
			delete c;
			return NULL;
		}
		return c;
	} catch (...) {
		return NULL;
	}
}

void chr_cascade_free(chr_cascade c) { delete (cv::CascadeClassifier *)c; }

chr_result chr_cascade_detect(chr_cascade c, chr_img img, double scale, int min_neighbors, int min_size, int equalize) {
	try {
		cv::Mat gray;
		if (img.channels == 1) {
			gray = mat(img);
		} else {
			cv::cvtColor(mat(img), gray, img.rgb ? cv::COLOR_RGB2GRAY : cv::COLOR_BGR2GRAY);
		}
		if (equalize) {
			cv::Mat eq;
			cv::equalizeHist(gray, eq);
			gray = eq;
		}
		std::vector<cv::Rect> found;
		std::vector<int> levels;
		std::vector<double> weights;
		// detectMultiScale3 with outputRejectLevels gives each grouped box
		// the weight of its last stage: the cascade's confidence.
		((cv::CascadeClassifier *)c)->detectMultiScale(gray, found, levels, weights, scale, min_neighbors, 0,
		                                              cv::Size(min_size, min_size), cv::Size(), true);
		return chr_rects(found, weights);
	} catch (const std::exception &e) {
		return chr_error(e.what());
	} catch (...) {
		return chr_error("unknown OpenCV error");
	}
}
