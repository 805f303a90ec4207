"""Read tags with mutagen (a tool that did not write them) and print them as JSON."""
import json
import sys

import mutagen
from mutagen.id3 import ID3
from mutagen.mp4 import MP4


def first(v):
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        v = v[0] if v else None
    if v is None:
        return None
    if hasattr(v, "text"):
        return str(v.text[0]) if v.text else None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def main(path):
    f = mutagen.File(path)
    out = {"title": None, "artist": None, "album": None, "rg_track_gain": None,
           "r128_track_gain": None, "cover": False, "isrc": None}
    tags = f.tags if f is not None else None
    if tags is None:
        print(json.dumps(out))
        return
    if isinstance(tags, ID3) or tags.__class__.__name__.endswith("ID3"):
        out["title"] = first(tags.get("TIT2"))
        out["artist"] = first(tags.get("TPE1"))
        out["album"] = first(tags.get("TALB"))
        out["isrc"] = first(tags.get("TSRC"))
        out["rg_track_gain"] = first(tags.get("TXXX:REPLAYGAIN_TRACK_GAIN"))
        out["cover"] = any(k.startswith("APIC") for k in tags.keys())
    elif isinstance(f, MP4):
        out["title"] = first(tags.get("\xa9nam"))
        out["artist"] = first(tags.get("\xa9ART"))
        out["album"] = first(tags.get("\xa9alb"))
        # Freeform names are case-sensitive; writers differ (foobar2000 uses lower case).
        for k in tags.keys():
            if k.lower() == "----:com.apple.itunes:replaygain_track_gain":
                out["rg_track_gain"] = first(tags[k])
        out["cover"] = bool(tags.get("covr"))
    else:
        out["title"] = first(tags.get("title"))
        out["artist"] = first(tags.get("artist"))
        out["album"] = first(tags.get("album"))
        out["isrc"] = first(tags.get("isrc"))
        out["rg_track_gain"] = first(tags.get("replaygain_track_gain"))
        out["r128_track_gain"] = first(tags.get("r128_track_gain"))
        out["cover"] = bool(getattr(f, "pictures", None)) or bool(tags.get("metadata_block_picture"))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
