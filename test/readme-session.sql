.load ./stateio
.mode table
-- One log file as four tables (app.log is created if it is missing).
CREATE VIRTUAL TABLE statelog USING stateio('app.log');

-- Updates, then a snapshot of the whole state (it begins a new epoch).
INSERT INTO statelog_updates(data) VALUES ('x=1'), ('y=2');
INSERT INTO statelog_snapshot(data) VALUES ('{"x":1,"y":2}');
INSERT INTO statelog_updates(data) VALUES ('x=3');

-- A transaction is one write and one fsync at COMMIT; ROLLBACK leaves no trace.
BEGIN;
INSERT INTO statelog_updates(data) VALUES ('y=4');
INSERT INTO statelog_updates(data) VALUES ('z=5');
COMMIT;
BEGIN;
INSERT INTO statelog_updates(data) VALUES ('oops');
ROLLBACK;

-- Every entry, in file order (data is a BLOB).
SELECT * FROM statelog;

-- What a restore returns: the current snapshot and the updates after it.
SELECT * FROM statelog_snapshot;
SELECT * FROM statelog_updates;

-- An older epoch's updates (its number is the argument), and every epoch.
SELECT * FROM statelog_updates(0);
SELECT * FROM statelog_epochs;

-- The same without a CREATE, and a check of the whole file.
SELECT epoch, updates, current FROM stateio_epochs('app.log');
SELECT count(*) AS problems FROM stateio_check('app.log');
