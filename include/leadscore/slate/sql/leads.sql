-- LeadScore for Slate: the "leads" query (Custom SQL, exposed as a JSON web service).
--
-- Paste this whole file as the SQL of a Custom SQL query. In Edit Web Service, set Service Type JSON and paste
-- these parameters (the types are those of leadscore.slate.queries.QUERY_PARAMS):
--   <param id="since" type="datetime"/>
--   <param id="until" type="datetime"/>
--   <param id="after" type="uniqueidentifier"/>
--   <param id="limit" type="int"/>
--
-- One row per person (not tagged `test`) whose record was created or changed in [@since, @until), as of @until:
-- the first origin and its source, the college of interest, the first application start, the tags, and `updated`,
-- the latest change LeadScore can see. A NULL @since or @until leaves that side open.
--
-- Paging: rows come ordered by the person GUID as a uniqueidentifier (SQL Server's order; LeadScore's default
-- key_order "sqlserver"), at most @limit of them (WITH TIES keeps duplicate keys on one page), and only those after
-- the cursor @after. LeadScore sends the nil GUID 00000000-0000-0000-0000-000000000000 on page 1, which sorts
-- before every GUID; @after IS NULL also serves page 1, for a run in the query editor without parameters.
-- ORDER BY and the cursor test use p.[id] (the uniqueidentifier), never the string column of the same name.
--
-- `updated` is the latest of these stamps before @until (what Slate's tables record of a change):
--   the first origin's [date]; the first application's [created]; the [timestamp] of the college-of-interest
--   [field] row; the person record's [updated] (Slate moves it when the record is edited, which is how source and
--   tag edits surface: [tag] rows carry no change stamp of their own).
-- Every value is cast to a string as the web service serves it: GUIDs lower case, datetimes ISO 8601
-- (yyyy-mm-ddThh:mi:ss, style 126) in the instance's time zone, as Slate stores them.
--
-- Instance-specific: 'college_of_interest' is the key of the custom field holding the college (or program) of
-- interest; use your instance's field key. Columns beyond BRIEF §2's data model, named as in Slate's standard
-- schema: [person].[first]/[last]/[email]/[updated], [field].[value]/[prompt]/[timestamp], [lookup.prompt].[value].
-- Slate checks the SQL when the query is saved; first_name, last_name and email are optional in the contract
-- (LeadScore drops them at cleaning) and may be left out.
SELECT TOP (COALESCE(@limit, 10000)) WITH TIES
    LOWER(CAST(p.[id] AS varchar(36))) AS [person_guid],
    CAST(p.[ref] AS varchar(11)) AS [ref],
    CAST(p.[first] AS nvarchar(255)) AS [first_name],
    CAST(p.[last] AS nvarchar(255)) AS [last_name],
    CAST(p.[email] AS nvarchar(255)) AS [email],
    CONVERT(varchar(19), o.[date], 126) AS [origin_date],
    CAST(lot.[summary] AS nvarchar(255)) AS [origin_source],
    CAST(coi.[value] AS nvarchar(255)) AS [college_of_interest],
    CONVERT(varchar(19), a.[created], 126) AS [application_created],
    CAST(tg.[tags] AS nvarchar(4000)) AS [tags],
    CONVERT(varchar(19), u.[updated], 126) AS [updated]
FROM [person] AS p
CROSS APPLY (
    SELECT TOP 1 fo.[date], fo.[type]
    FROM [origin] AS fo
    WHERE fo.[record] = p.[id] AND fo.[first] = 1 AND (@until IS NULL OR fo.[date] < @until)
    ORDER BY fo.[date]
) AS o
LEFT JOIN [lookup.origin.type] AS lot ON lot.[id] = o.[type]
OUTER APPLY (
    SELECT TOP 1 ap.[created]
    FROM [application] AS ap
    WHERE ap.[person] = p.[id] AND (@until IS NULL OR ap.[created] < @until)
    ORDER BY ap.[created]
) AS a
OUTER APPLY (
    SELECT TOP 1 COALESCE(lp.[value], f.[value]) AS [value], f.[timestamp]
    FROM [field] AS f
    LEFT JOIN [lookup.prompt] AS lp ON lp.[id] = f.[prompt]
    WHERE f.[record] = p.[id] AND f.[field] = 'college_of_interest' AND (@until IS NULL OR f.[timestamp] < @until)
    ORDER BY f.[timestamp] DESC
) AS coi
OUTER APPLY (
    SELECT STRING_AGG(CAST(t.[tag] AS nvarchar(255)), ',') WITHIN GROUP (ORDER BY t.[tag]) AS [tags]
    FROM [tag] AS t
    WHERE t.[record] = p.[id]
) AS tg
CROSS APPLY (
    SELECT MAX(c.[at]) AS [updated]
    FROM (VALUES (o.[date]), (a.[created]), (coi.[timestamp]), (p.[updated])) AS c ([at])
    WHERE @until IS NULL OR c.[at] < @until
) AS u
WHERE (@after IS NULL OR p.[id] > @after)
    AND (@since IS NULL OR u.[updated] >= @since)
    AND NOT EXISTS (SELECT 1 FROM [tag] AS x WHERE x.[record] = p.[id] AND x.[tag] = 'test')
ORDER BY p.[id]
