//! Probe and decode arbitrary bytes: content sniffing, every demuxer and decoder the pipeline
//! uses (symphonia, libopus), with the pipeline's own limits. Errors are fine; a panic,
//! abort, hang or huge allocation is a bug (libFuzzer's hook reports panics even though the
//! pipeline would catch them).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    musicd_media::fuzz::probe_decode(data);
});
