/*
 * Pocket TTS family internals shared by pocket.c (model, stream) and
 * pocket_voice.c (voice states). Not part of the public API.
 */
#ifndef CTTS_POCKET_INTERNAL_H
#define CTTS_POCKET_INTERNAL_H

#include "backend/backend.h"
#include "models/pocket/flowlm.h"
#include "models/pocket/mimi.h"
#include "models/pocket/pocket_config.h"
#include "models/pocket/pocket_weights.h"
#include "text/sentencepiece.h"

struct pocket_model {
    pocket_config cfg;
    ctts_backend *be;
    int cpu_isa;   /* ISA cap be was made with (streams make one-thread twins of it) */
    int n_threads; /* threads of be (resolved: >= 1) */
    pocket_weights *weights;
    spm_model *spm;
    pocket_flowlm *flowlm;
    pocket_mimi *mimi;
};

struct pocket_voice {
    const pocket_model *model;
    pocket_flowlm_state *state; /* KV after the voice prompt; offset = prompt length */
};

#endif
