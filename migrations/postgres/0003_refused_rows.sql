-- Rows of a bulk mutation (an import) the server did not create because
-- their MRN was taken; stored with the outcome, so a replayed push gets
-- the same answer.
ALTER TABLE mutation_results ADD COLUMN refused jsonb NOT NULL DEFAULT '[]';
