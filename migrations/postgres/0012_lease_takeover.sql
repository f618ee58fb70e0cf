-- The owner of the lease a claim replaced, when that lease ended without an
-- answer (its daemon died or stalled mid-request): the claim sets it from the
-- row's old lease_owner, so the new holder knows the outcome of what was
-- sent is unknown. No index holds it, so a claim stays an in-place update.
ALTER TABLE deliveries ADD COLUMN lease_taken_from TEXT;
