-- Version 10: jobs are claimed with a lease, so several service instances can share one
-- queue. A worker that claims a job writes its instance's name and when the lease runs
-- out; a living instance renews its leases while the jobs run. A job whose lease ran out
-- (its instance was killed) is claimed again by anyone, and a job's outcome is written
-- only by the instance that still holds its lease, so no job is recorded done twice.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
CREATE INDEX jobs_running_lease ON jobs(lease_until) WHERE state = 'running';
