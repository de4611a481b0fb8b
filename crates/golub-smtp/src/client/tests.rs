//! Transcript-style tests of the client session against scripted server replies.
