-- A new workstation was named "Workstation <prefix>", in English, and the
-- status bar showed that in Russian and Thai too. The default is now the
-- MRN prefix alone (the UI puts the word "Workstation" before it in the
-- user's language); a name an admin chose is kept.
UPDATE workstation SET name = mrn_prefix WHERE name = 'Workstation ' || mrn_prefix;
