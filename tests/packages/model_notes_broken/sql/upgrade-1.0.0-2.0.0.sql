-- broken on purpose: the rename works, the next statement does not, so the
-- whole chain must roll back and leave the 1.0.0 schema and data.
ALTER TABLE note RENAME COLUMN body TO content;
UPDATE note SET contnt = upper(content);
