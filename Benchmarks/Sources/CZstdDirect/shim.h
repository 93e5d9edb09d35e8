#ifndef SAMSA_CZSTD_SHIM_H
#define SAMSA_CZSTD_SHIM_H
#include <zstd.h>
#endif
