#ifndef SAMSA_CRC32C_H
#define SAMSA_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as Kafka's RecordBatch v2 uses it.
/// `crc` is the running value: pass 0 to start, and the previous result to continue over more bytes.
/// All functions are pure and thread-safe.

/// The fastest path this CPU supports (chosen once, at load time).
uint32_t samsa_crc32c(uint32_t crc, const void *data, size_t length);

/// Portable slicing-by-8 table implementation; available everywhere.
uint32_t samsa_crc32c_software(uint32_t crc, const void *data, size_t length);

/// True when this CPU has a CRC-32C instruction (SSE4.2 on x86-64, the CRC extension on arm64).
bool samsa_crc32c_hardware_available(void);

/// The hardware implementation. Only call it when `samsa_crc32c_hardware_available()` is true.
uint32_t samsa_crc32c_hardware(uint32_t crc, const void *data, size_t length);

#endif
