-- Fragment: NOT MATERIALIZED. sql/fragments/delay_rows_materialization.sql when the labels table
-- declares one row per prediction id (JobSource.identifiers picks it): the rows are one hash join,
-- which PostgreSQL runs in parallel for each of the suggestion's two reads, where a materialised
-- CTE is filled by one serial join.
NOT MATERIALIZED
