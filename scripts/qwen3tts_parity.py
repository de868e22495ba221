#!/usr/bin/python3
# Audio parity of `ctts generate` with the official outputs of the golden tiny Qwen3-TTS set
# (the greedy CustomVoice cases): sample counts and max |difference| (README tolerance 1e-3).
#   /usr/bin/python3 scripts/qwen3tts_parity.py   (needs python3-numpy; run from the repo root)
import json, struct, subprocess, numpy as np, sys
G='../shared/golden/qwen3tts-tiny'
m=json.load(open(G+'/manifest.json'))
def st_read(path, name):
    b=open(path,'rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n]); t=h[name]
    o=8+n; s,e=t['data_offsets']; return np.frombuffer(b[o+s:o+e], dtype={'F32':np.float32,'I32':np.int32}[t['dtype']])
def wav_f32(path):
    b=open(path,'rb').read(); i=b.index(b'data'); return np.frombuffer(b[i+8:], dtype=np.float32)
for c in m['cases']:
    kw=c['call_kwargs']
    if kw.get('do_sample', True) or c['kind']!='custom': continue
    args=['build/ctts','generate','--model',G+'/model','--text',c['text'],'--speaker',c['speaker'],'--language',c['language'],
          '--temperature','0','--max-new-tokens',str(kw['max_new_tokens']),'--repetition-penalty',str(kw.get('repetition_penalty',1.05)),
          '--wav-format','f32','--output','/tmp/p.wav','--threads','2']
    if kw.get('non_streaming_mode') is not None: args+=['--text-mode','non-streaming' if kw['non_streaming_mode'] else 'streaming']
    r=subprocess.run(args,capture_output=True,text=True)
    if r.returncode: print(c['id'], 'ERR', r.stderr.strip()); continue
    a=wav_f32('/tmp/p.wav'); g=st_read(G+'/cases/'+c['id']+'.safetensors','audio')
    print(c['id'], 'samples', len(a), len(g), 'max|diff|', float(np.max(np.abs(a-g))) if len(a)==len(g) else 'len differs')
