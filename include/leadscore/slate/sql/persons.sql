-- LeadScore for Slate: the "persons" query (Custom SQL, exposed as a JSON web service): the reconciliation query.
--
-- Paste this whole file as the SQL of a Custom SQL query. In Edit Web Service, set Service Type JSON and paste
-- these parameters (the types are those of leadscore.slate.queries.QUERY_PARAMS):
--   <param id="since" type="datetime"/>
--   <param id="until" type="datetime"/>
--   <param id="after" type="uniqueidentifier"/>
--   <param id="limit" type="int"/>
--
-- One row per person record that exists now (not tagged `test`) and was created before @until: only its GUID.
-- LeadScore calls it on every lead_data run with @since NULL (the whole list) and compares it with the persons it
-- stored: a stored GUID missing here was merged into another record or deleted, and is never scored again. A NULL
-- @since or @until leaves that side open.
--
-- Paging: rows come ordered by the person GUID as a uniqueidentifier (SQL Server's order), at most @limit of them
-- (WITH TIES keeps duplicate keys on one page), and only those after the cursor @after; @after IS NULL (or the nil
-- GUID LeadScore sends on page 1) serves the first page. ORDER BY and the cursor test use p.[id], the
-- uniqueidentifier. About 100 pages at a million persons: the cheapest query of the run.
SELECT TOP (COALESCE(@limit, 10000)) WITH TIES
    LOWER(CAST(p.[id] AS varchar(36))) AS [person_guid]
FROM [person] AS p
WHERE (@after IS NULL OR p.[id] > @after)
    AND (@since IS NULL OR p.[created] >= @since)
    AND (@until IS NULL OR p.[created] < @until)
    AND NOT EXISTS (SELECT 1 FROM [tag] AS x WHERE x.[record] = p.[id] AND x.[tag] = 'test')
ORDER BY p.[id]
