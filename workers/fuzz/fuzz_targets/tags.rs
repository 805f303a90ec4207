//! Read tags from arbitrary bytes with lofty under the pipeline's allocation limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    musicd_media::fuzz::read_tags(data);
});
