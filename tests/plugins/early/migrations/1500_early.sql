-- Numbered in the built-in connectors' range: a plug-in may not (it numbers from 5000).
CREATE TABLE early (code TEXT NOT NULL PRIMARY KEY);
