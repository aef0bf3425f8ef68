-- notes 1.0.0 -> 2.0.0: the field `body` of model `note` is now `content`.
-- The host runs this inside one transaction with the version bump, after a
-- verified backup; if anything fails the database stays at 1.0.0.
ALTER TABLE note RENAME COLUMN body TO content;
