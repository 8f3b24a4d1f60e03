-- Names move from search_token to SQLite's FTS5.
--
-- Two common words ("Clark Joseph", "Кузнецова Елена") made search_token
-- scan the rarer word's patients and check the other word one by one:
-- p95 15 ms on a busy machine. FTS5 intersects the words' posting lists
-- instead: p95 8 ms there, 2 ms on a quiet one (search_bench, side by side
-- in one run, README). The keys are the same: the n: (folded name part) and
-- s: (Latin skeleton) entries of each patient's search_keys, written
-- without the colon (the ascii tokenizer splits on it; the kind letter
-- alone keeps the two apart), e.g. `nиванов sivanov`.
--   content=''           the keys live in patients.search_keys already;
--   contentless_delete   so an edit can drop a patient's row by key;
--   detail='none'        only which patients: no positions, a third the size;
--   tokenize='ascii'     the keys are folded already; every non-ASCII
--                        character (Cyrillic, Thai marks) is a letter;
--   prefix='2 3 4 5 6'   prefix indexes: the kind letter and one to five
--                        typed characters read one posting list each.
-- Numbers (p:, i:, m:) stay in search_token, whose order makes a search by
-- ending one range scan.
CREATE VIRTUAL TABLE patient_name_fts USING fts5(
    keys, content='', contentless_delete=1, detail='none', tokenize='ascii',
    prefix='2 3 4 5 6'
);

INSERT INTO patient_name_fts (rowid, keys)
SELECT key, keys FROM (
    SELECT p.key AS key,
        (SELECT group_concat(replace(j.value, ':', ''), ' ')
         FROM json_each(p.search_keys) j WHERE j.value GLOB '[ns]:*') AS keys
    FROM patients p WHERE p.status = 'active' ORDER BY p.key
) WHERE keys IS NOT NULL;

DELETE FROM search_token WHERE token GLOB '[ns]:*';
