//! The musicd media pipeline. The stages arrive with the media pipeline issue.
