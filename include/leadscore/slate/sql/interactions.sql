-- LeadScore for Slate: the "interactions" query (Custom SQL, exposed as a JSON web service).
--
-- Paste this whole file as the SQL of a Custom SQL query. In Edit Web Service, set Service Type JSON and paste
-- these parameters (the types are those of leadscore.slate.queries.QUERY_PARAMS):
--   <param id="since" type="datetime"/>
--   <param id="until" type="datetime"/>
--   <param id="after" type="uniqueidentifier"/>
--   <param id="limit" type="int"/>
--
-- One row per interaction stamped in [@since, @until) of a person not tagged `test`, as a UNION ALL of:
--   [message]        email_sent (every status), email_open (open, click, optout, complaint), email_click (click),
--                    email_optout (optout); detail: the mailing's name. Slate keeps one row per message with its
--                    furthest status and its [delivered] stamp, so every kind of a message is stamped [delivered].
--   [ping]           ping; detail: the URL, stamped [timestamp].
--   [activity]       activity; detail: the activity code (appointment, chat, email, phone call, walkin, ...).
--   [form.response]  event_registered (every response, stamped [submitted]) and, by [status], event_attended
--                    (attend), event_noshow (noshow) or event_cancelled (cancel), stamped with the event's date.
-- A NULL @since or @until leaves that side open.
--
-- interaction_guid: these tables hold one row per event, not one GUID per interaction kind, so the key is an MD5
-- of the row's natural key and its kind, cast to uniqueidentifier: stable from run to run and distinct per kind.
-- Paging: rows come ordered by that uniqueidentifier (SQL Server's order; LeadScore's default key_order
-- "sqlserver"), at most @limit of them (WITH TIES keeps duplicate keys on one page), and only those after the
-- cursor @after. LeadScore sends the nil GUID on page 1, which sorts before every GUID; @after IS NULL also serves
-- page 1, for a run in the query editor without parameters. ORDER BY and the cursor test use i.[interaction_guid]
-- (the uniqueidentifier), never the string column of the same name.
-- Every value is cast to a string as the web service serves it: GUIDs lower case, datetimes ISO 8601
-- (yyyy-mm-ddThh:mi:ss, style 126) in the instance's time zone, as Slate stores them.
--
-- Columns beyond BRIEF §2's data model, named as in Slate's standard schema: [message].[delivered],
-- [mailing].[id]/[name], [form.response].[submitted], [form].[id]/[title]/[date]. Slate checks the SQL when the
-- query is saved.
SELECT TOP (COALESCE(@limit, 10000)) WITH TIES
    LOWER(CAST(i.[interaction_guid] AS varchar(36))) AS [interaction_guid],
    LOWER(CAST(i.[person_guid] AS varchar(36))) AS [person_guid],
    CAST(i.[kind] AS nvarchar(32)) AS [kind],
    CAST(i.[detail] AS nvarchar(2000)) AS [detail],
    CONVERT(varchar(19), i.[occurred], 126) AS [occurred]
FROM (
    SELECT
        CAST(HASHBYTES('MD5', CONCAT('email_sent|', m.[person], '|', m.[mailing])) AS uniqueidentifier)
            AS [interaction_guid],
        m.[person] AS [person_guid],
        'email_sent' AS [kind],
        CAST(ml.[name] AS nvarchar(2000)) AS [detail],
        m.[delivered] AS [occurred]
    FROM [message] AS m
    LEFT JOIN [mailing] AS ml ON ml.[id] = m.[mailing]
    WHERE m.[mailing] IS NOT NULL AND m.[status] IN ('sent', 'delivered', 'open', 'click', 'optout', 'complaint')
    UNION ALL
    SELECT
        CAST(HASHBYTES('MD5', CONCAT('email_open|', m.[person], '|', m.[mailing])) AS uniqueidentifier),
        m.[person],
        'email_open',
        CAST(ml.[name] AS nvarchar(2000)),
        m.[delivered]
    FROM [message] AS m
    LEFT JOIN [mailing] AS ml ON ml.[id] = m.[mailing]
    WHERE m.[mailing] IS NOT NULL AND m.[status] IN ('open', 'click', 'optout', 'complaint')
    UNION ALL
    SELECT
        CAST(HASHBYTES('MD5', CONCAT('email_click|', m.[person], '|', m.[mailing])) AS uniqueidentifier),
        m.[person],
        'email_click',
        CAST(ml.[name] AS nvarchar(2000)),
        m.[delivered]
    FROM [message] AS m
    LEFT JOIN [mailing] AS ml ON ml.[id] = m.[mailing]
    WHERE m.[mailing] IS NOT NULL AND m.[status] = 'click'
    UNION ALL
    SELECT
        CAST(HASHBYTES('MD5', CONCAT('email_optout|', m.[person], '|', m.[mailing])) AS uniqueidentifier),
        m.[person],
        'email_optout',
        CAST(ml.[name] AS nvarchar(2000)),
        m.[delivered]
    FROM [message] AS m
    LEFT JOIN [mailing] AS ml ON ml.[id] = m.[mailing]
    WHERE m.[mailing] IS NOT NULL AND m.[status] = 'optout'
    UNION ALL
    SELECT
        CAST(
            HASHBYTES('MD5', CONCAT('ping|', pg.[record], '|', pg.[url], '|', CONVERT(varchar(27), pg.[timestamp], 126)))
            AS uniqueidentifier
        ),
        pg.[record],
        'ping',
        CAST(pg.[url] AS nvarchar(2000)),
        pg.[timestamp]
    FROM [ping] AS pg
    UNION ALL
    SELECT
        CAST(
            HASHBYTES('MD5', CONCAT('activity|', ac.[record], '|', ac.[code], '|', CONVERT(varchar(27), ac.[date], 126)))
            AS uniqueidentifier
        ),
        ac.[record],
        'activity',
        CAST(ac.[code] AS nvarchar(2000)),
        ac.[date]
    FROM [activity] AS ac
    UNION ALL
    SELECT
        CAST(HASHBYTES('MD5', CONCAT('event_registered|', fr.[record], '|', fr.[form])) AS uniqueidentifier),
        fr.[record],
        'event_registered',
        CAST(fm.[title] AS nvarchar(2000)),
        fr.[submitted]
    FROM [form.response] AS fr
    LEFT JOIN [form] AS fm ON fm.[id] = fr.[form]
    WHERE fr.[status] IN ('registered', 'attend', 'noshow', 'cancel')
    UNION ALL
    SELECT
        CAST(HASHBYTES('MD5', CONCAT('event_outcome|', fr.[record], '|', fr.[form])) AS uniqueidentifier),
        fr.[record],
        CASE fr.[status] WHEN 'attend' THEN 'event_attended' WHEN 'noshow' THEN 'event_noshow' ELSE 'event_cancelled' END,
        CAST(fm.[title] AS nvarchar(2000)),
        COALESCE(fm.[date], fr.[submitted])
    FROM [form.response] AS fr
    LEFT JOIN [form] AS fm ON fm.[id] = fr.[form]
    WHERE fr.[status] IN ('attend', 'noshow', 'cancel')
) AS i
WHERE (@after IS NULL OR i.[interaction_guid] > @after)
    AND i.[occurred] IS NOT NULL
    AND (@since IS NULL OR i.[occurred] >= @since)
    AND (@until IS NULL OR i.[occurred] < @until)
    AND NOT EXISTS (SELECT 1 FROM [tag] AS x WHERE x.[record] = i.[person_guid] AND x.[tag] = 'test')
ORDER BY i.[interaction_guid]
