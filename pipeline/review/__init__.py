"""Review stage: listener and owner accounts, signed links, blind masking, and the
queue, drafts and submitted marks of a review. Imports storage and the stages below it."""
