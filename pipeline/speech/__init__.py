"""Speech stage: decode recordings, load Whisper models, transcribe into speaker
turns with word times; chat logs read as transcripts. Imports only config and errors."""
