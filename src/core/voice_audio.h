/*
 * Voices from audio files for the public API (core/tts.c): format sniffing
 * (voice-state safetensors vs audio), decoding + cloning, and the on-disk
 * cache of cloned states.
 *
 * Cache: <cache_dir>/<sha256 of the audio file bytes>-<16 hex of sha256(model
 * identity, truncation)>.safetensors in the official voice-state format. A
 * hit costs one state-file load; a miss clones and then writes the file
 * atomically (temporary name + rename), creating cache_dir if needed. A cache
 * file that does not load is ignored and rewritten; failing to write the
 * cache does not fail the call (the voice is still returned). The directory
 * is always given by the caller: the library reads no environment variables.
 */
#ifndef CTTS_CORE_VOICE_AUDIO_H
#define CTTS_CORE_VOICE_AUDIO_H

#include <stddef.h>

#include "ctts.h"
#include "models/pocket/pocket.h"

/* 1 when path names a voice-state safetensors file: by its extension
 * (".safetensors", any case), else by content (u64 header length that fits
 * the file, then '{'). 0 for anything else, including unreadable files. */
int voice_path_is_state(const char *path);

/* Clones a voice from an audio file (see audio_read.h for formats and checks):
 * max_seconds > 0 keeps the first max_seconds of audio, 0 all of it.
 * cache_dir NULL or "" disables the cache. *cache_hit (optional) is set to 1
 * when the state came from the cache. */
ctts_status voice_from_audio_file(pocket_model *m, const char *path, double max_seconds,
                                  const char *cache_dir, pocket_voice **out, int *cache_hit,
                                  char *err, size_t err_len);

#endif
