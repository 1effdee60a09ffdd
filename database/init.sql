-- storecast raw schema. Applied by `storecast db init`; safe to run again.
-- Owners (DESIGN.md): raw = the loader, ml = training + scoring, scores = scoring.
-- dbt creates and owns staging, features and marts itself.

create extension if not exists vector;

create schema if not exists raw;
create schema if not exists ml;
create schema if not exists scores;

comment on schema raw is 'Source tables exactly as loaded by the storecast loader or sample generator.';
comment on schema ml is 'Model registry, training runs, metrics and the pipeline run log (written by Python).';
comment on schema scores is 'Predictions written by the scoring job, one table per model family.';

-- ---------------------------------------------------------------- schema version
create table if not exists raw.schema_versions (
    version     integer primary key,
    applied_at  timestamptz not null default now(),
    description text not null
);
comment on table raw.schema_versions is 'One row per version of database/init.sql applied to this database.';
comment on column raw.schema_versions.version is 'Schema version number; the highest is the one in force.';
comment on column raw.schema_versions.applied_at is 'When this version was first applied.';
comment on column raw.schema_versions.description is 'What this version added.';

-- ---------------------------------------------------------------- reference data
create table if not exists raw.stores (
    store_id   bigint primary key,
    store_name text not null,
    region     text,
    format     text check (format in ('hypermarket', 'supermarket', 'convenience', 'online')),
    opened_at  date
);
comment on table raw.stores is 'One row per store; the online shop is a store with format ''online''.';
comment on column raw.stores.store_id is 'Store key.';
comment on column raw.stores.store_name is 'Display name of the store.';
comment on column raw.stores.region is 'Sales region the store belongs to; NULL when not known.';
comment on column raw.stores.format is 'Store format: hypermarket, supermarket, convenience or online; NULL when not known.';
comment on column raw.stores.opened_at is 'Date the store opened; NULL when not known.';

create table if not exists raw.customers (
    customer_id    bigint primary key,
    signup_date    date,
    region         text,
    segment        text check (segment in ('household', 'business')),
    age_band       text check (age_band in ('18-24', '25-34', '35-44', '45-54', '55-64', '65+')),
    is_loyalty_member boolean not null default false,
    email_opt_in   boolean not null default false
);
comment on table raw.customers is 'One row per known (loyalty-identified) customer.';
comment on column raw.customers.customer_id is 'Customer key.';
comment on column raw.customers.signup_date is 'Date the customer first registered; NULL when not known.';
comment on column raw.customers.region is 'Home region of the customer; NULL when not known.';
comment on column raw.customers.segment is 'household or business; NULL when not known.';
comment on column raw.customers.age_band is 'Self-declared age band; NULL when not given.';
comment on column raw.customers.is_loyalty_member is 'Whether the customer is enrolled in the loyalty programme.';
comment on column raw.customers.email_opt_in is 'Whether the customer accepts marketing e-mail.';

create table if not exists raw.products (
    product_id              bigint primary key,
    title                   text not null,
    brand                   text,
    category                text not null,
    platform                text check (platform in ('store', 'online', 'marketplace')),
    list_price              numeric(12, 2) check (list_price > 0),
    unit_cost               numeric(12, 2) check (unit_cost >= 0),
    is_own_brand            boolean not null default false,
    sustainability_score    numeric(5, 2) check (sustainability_score between 0 and 100),
    is_verified_sustainable boolean not null default false,
    launched_at             date,
    initial_stock           integer check (initial_stock >= 0)
);
comment on table raw.products is 'One row per product or design listing.';
comment on column raw.products.product_id is 'Product key.';
comment on column raw.products.title is 'Product title as listed.';
comment on column raw.products.brand is 'Brand name; NULL when not known.';
comment on column raw.products.category is 'Merchandise category.';
comment on column raw.products.platform is 'Where the product is sold: store (all stores and online), online (own web shop only) or marketplace (third-party marketplace, fulfilled by the online store); NULL when not known.';
comment on column raw.products.list_price is 'Regular shelf price per unit, in the shop currency; NULL when the shop has none (a scanner panel''s shelf prices are in raw.order_items).';
comment on column raw.products.unit_cost is 'Purchase cost per unit, in the shop currency; NULL when not known.';
comment on column raw.products.is_own_brand is 'Whether the product is the retailer''s own brand.';
comment on column raw.products.sustainability_score is 'Supplier sustainability score, 0 (worst) to 100 (best); NULL when not rated.';
comment on column raw.products.is_verified_sustainable is 'Whether the sustainability claim is independently verified.';
comment on column raw.products.launched_at is 'Date the product was first offered for sale; NULL when not known (the product is then no sell-through item).';
comment on column raw.products.initial_stock is 'Units bought in for the launch (the denominator of sell-through); NULL (or 0) when not known: the item then has no sell-through label.';
-- v13: what only describes a product, a store or a customer, or only the sell-through model
-- reads, may be left out of a file (NULL): a retailer need not make it up.
alter table raw.products
    alter column brand drop not null,
    alter column platform drop not null,
    alter column unit_cost drop not null,
    alter column launched_at drop not null,
    alter column initial_stock drop not null;
-- v15: a product without a list price (a scanner panel has only the shelf prices of its
-- sales; demand reads the regular price from those) loads as it is.
alter table raw.products alter column list_price drop not null;
alter table raw.stores
    alter column region drop not null,
    alter column format drop not null,
    alter column opened_at drop not null;
alter table raw.customers
    alter column signup_date drop not null,
    alter column region drop not null,
    alter column segment drop not null;

create table if not exists raw.product_embeddings (
    product_id      bigint primary key references raw.products (product_id),
    embedding       vector(768) not null,
    embedding_model text not null,
    created_at      timestamptz not null default now()
);
comment on table raw.product_embeddings is 'One CLIP image embedding per product, as written by the upstream image ingestion flow.';
comment on column raw.product_embeddings.product_id is 'Product the image belongs to.';
comment on column raw.product_embeddings.embedding is '768-dimensional CLIP image embedding (compare with cosine distance).';
comment on column raw.product_embeddings.embedding_model is 'Name of the model that produced the embedding, e.g. clip-vit-large-patch14.';
comment on column raw.product_embeddings.created_at is 'When the embedding was computed.';

-- ---------------------------------------------------------------- transactions
create table if not exists raw.orders (
    order_id    bigint primary key,
    customer_id bigint references raw.customers (customer_id),
    store_id    bigint references raw.stores (store_id),
    ordered_at  timestamptz not null,
    channel     text check (channel in ('store', 'web', 'app'))
);
comment on table raw.orders is 'One row per order (basket); anonymous till sales have no customer.';
comment on column raw.orders.order_id is 'Order key.';
comment on column raw.orders.customer_id is 'Identified customer; NULL for anonymous till sales.';
comment on column raw.orders.store_id is 'Store that took the order (the online store for web and app orders); NULL when not known: the order then counts for its customer, not for demand.';
comment on column raw.orders.ordered_at is 'When the order was placed.';
comment on column raw.orders.channel is 'store (till), web or app; NULL when not known.';
-- v13: an online shop's customer orders need no store or channel made up for them.
alter table raw.orders
    alter column store_id drop not null,
    alter column channel drop not null;

create table if not exists raw.order_items (
    order_id        bigint not null references raw.orders (order_id),
    line_no         integer not null check (line_no >= 1),
    product_id      bigint not null references raw.products (product_id),
    quantity        numeric(14, 3) not null,
    unit_price      numeric(12, 2) not null check (unit_price >= 0),
    discount_amount numeric(12, 2) not null default 0 check (discount_amount >= 0),
    promo_flag      boolean not null default false,
    primary key (order_id, line_no)
);
comment on table raw.order_items is 'One row per order line.';
comment on column raw.order_items.order_id is 'Order the line belongs to.';
comment on column raw.order_items.line_no is 'Line number within the order, from 1.';
comment on column raw.order_items.product_id is 'Product sold.';
comment on column raw.order_items.quantity is 'Units sold: a count, or an amount for goods sold by weight or length (2.350 kg), to 3 decimals; 0 records a period the product was on sale and sold none (observed, under demand_missing_periods = unobserved); below 0 a return (units taken back, refunded at unit_price less discount_amount): netted from its customer''s spend, never demand.';
-- v10 made a line of 0 units an observed zero (a scanner panel''s week on the shelf without
-- a sale), v17 a negative one a return: the check on the quantity goes (v17, below).
comment on column raw.order_items.unit_price is 'Shelf price per unit at the time of sale, before discounts.';
comment on column raw.order_items.discount_amount is 'Total discount on the line (promotion and personal offer), in the shop currency; on a return line, the discount its refund is reduced by (0 or more, as on a sale).';
comment on column raw.order_items.promo_flag is 'Whether a store promotion applied to the line.';

-- ---------------------------------------------------------------- promotions and offers
create table if not exists raw.promotions (
    promotion_id bigint primary key,
    product_id   bigint not null references raw.products (product_id),
    store_id     bigint references raw.stores (store_id),
    start_date   date not null,
    end_date     date not null,
    discount_pct numeric(5, 4) not null default 0 check (discount_pct >= 0 and discount_pct < 1),
    feature_ad   boolean not null default false,
    check (end_date >= start_date)
);
comment on table raw.promotions is 'Store-level price promotions; a NULL store means all stores.';
comment on column raw.promotions.promotion_id is 'Promotion key.';
comment on column raw.promotions.product_id is 'Product on promotion.';
comment on column raw.promotions.store_id is 'Store running the promotion; NULL for all stores.';
comment on column raw.promotions.start_date is 'First day of the promotion.';
comment on column raw.promotions.end_date is 'Last day of the promotion (inclusive).';
comment on column raw.promotions.discount_pct is 'Price reduction as a fraction of the regular shelf price, e.g. 0.2 for 20 % off; 0 (the default) for a promotion without a price cut (a feature ad or a display).';
comment on column raw.promotions.feature_ad is 'Whether the promotion was featured in advertising.';
-- v15: a promotion without a price cut (a feature ad or a display only, as a scanner panel
-- records them apart from its deals) loads as it is, rather than with a made-up discount.
alter table raw.promotions alter column discount_pct set default 0;
do $$
begin
    if exists (
        select 1 from pg_constraint
        where conrelid = 'raw.promotions'::regclass
            and conname = 'promotions_discount_pct_check'
            and pg_get_constraintdef(oid) ~ 'discount_pct > \(?0'
    ) then
        alter table raw.promotions drop constraint promotions_discount_pct_check;
        alter table raw.promotions add constraint promotions_discount_pct_check
            check (discount_pct >= 0 and discount_pct < 1);
    end if;
end
$$;

-- v16: shelf prices set ahead, so that a forecast reads the price its target period will
-- have (a price rise, or a price above list, included) rather than only the regular price
-- less a promotion's discount.
create table if not exists raw.shelf_prices (
    price_id    bigint primary key,
    product_id  bigint not null references raw.products (product_id),
    store_id    bigint references raw.stores (store_id),
    start_date  date not null,
    end_date    date not null,
    shelf_price numeric(12, 2) not null check (shelf_price > 0),
    check (end_date >= start_date)
);
comment on table raw.shelf_prices is 'Shelf prices set ahead (a price list or a price plan), deals included: what a unit of a product sells at in a store from start_date to end_date; a NULL store means all stores. A demand forecast reads the price set for its target period.';
comment on column raw.shelf_prices.price_id is 'Price key.';
comment on column raw.shelf_prices.product_id is 'Product priced.';
comment on column raw.shelf_prices.store_id is 'Store charging the price; NULL for all stores (a store''s own price wins over it).';
comment on column raw.shelf_prices.start_date is 'First day of the price.';
comment on column raw.shelf_prices.end_date is 'Last day of the price (inclusive).';
comment on column raw.shelf_prices.shelf_price is 'Price per unit customers pay, any deal included; may be above list price.';

-- v19: the retailer's calendar of events, so that a demand forecast knows a holiday that
-- moves in the year (Easter, Thanksgiving's week, a festival) from the season.
create table if not exists raw.calendar_events (
    event_date date not null,
    event      text not null check (btrim(event) <> ''),
    primary key (event_date, event)
);
comment on table raw.calendar_events is 'Days of events that move demand and that the retailer knows ahead (holidays, festivals, paydays), past and planned, in every store: a demand forecast reads the events of its target period.';
comment on column raw.calendar_events.event_date is 'Day of the event (one row per day of an event that lasts several).';
comment on column raw.calendar_events.event is 'Name of the event, the same every year it recurs (e.g. easter): the forecast learns each name''s effect from its earlier days.';

-- v20: events of one store (a local fair, the store's own anniversary sale, roadworks at
-- its door) beside the chain's calendar. A table of their own, not a NULL store in the
-- chain's: a key with a NULL in it is no primary key, and the loader rejects a repeated
-- row by its key.
create table if not exists raw.store_calendar_events (
    store_id   bigint not null references raw.stores (store_id),
    event_date date not null,
    event      text not null check (btrim(event) <> ''),
    primary key (store_id, event_date, event)
);
comment on table raw.store_calendar_events is 'Days of events in one store only that move its demand and that the retailer knows ahead (a local fair, a school holiday of its region, roadworks at its door), past and planned: its demand forecasts read them beside raw.calendar_events. An event of every store belongs in raw.calendar_events; one of a region is a row per store of it.';
comment on column raw.store_calendar_events.store_id is 'Store the event is in.';
comment on column raw.store_calendar_events.event_date is 'Day of the event (one row per day of an event that lasts several).';
comment on column raw.store_calendar_events.event is 'Name of the event, the same every year it recurs (e.g. town fair): the forecast learns each name''s effect from its earlier days, in this store and any other that has it.';

create table if not exists raw.offers (
    offer_id       bigint primary key,
    product_id     bigint references raw.products (product_id),
    category       text,
    discount_depth numeric(5, 4) not null check (discount_depth > 0 and discount_depth < 1),
    margin_impact  numeric(12, 2) not null,
    start_date     date not null,
    end_date       date not null,
    is_own_brand   boolean not null default false,
    check (product_id is not null or category is not null),
    check (end_date >= start_date)
);
comment on table raw.offers is 'Personal offers (coupons) that can be shown to customers; each targets a product or a whole category.';
comment on column raw.offers.offer_id is 'Offer key.';
comment on column raw.offers.product_id is 'Product the offer applies to; NULL for a category-wide offer.';
comment on column raw.offers.category is 'Category the offer applies to (set for category-wide offers, and for product offers as the product''s category).';
comment on column raw.offers.discount_depth is 'Discount as a fraction of price, e.g. 0.25 for 25 % off.';
comment on column raw.offers.margin_impact is 'Expected margin given up per redemption, in the shop currency.';
comment on column raw.offers.start_date is 'First day the offer can be redeemed.';
comment on column raw.offers.end_date is 'Last day the offer can be redeemed (inclusive).';
comment on column raw.offers.is_own_brand is 'Whether the offer promotes an own-brand product or range.';

create table if not exists raw.impressions (
    impression_id bigint primary key,
    customer_id   bigint not null references raw.customers (customer_id),
    offer_id      bigint not null references raw.offers (offer_id),
    shown_at      timestamptz not null
);
comment on table raw.impressions is 'One row per time an offer was shown to a customer.';
comment on column raw.impressions.impression_id is 'Impression key.';
comment on column raw.impressions.customer_id is 'Customer who saw the offer.';
comment on column raw.impressions.offer_id is 'Offer shown.';
comment on column raw.impressions.shown_at is 'When the offer was shown.';

create table if not exists raw.redemptions (
    redemption_id bigint primary key,
    impression_id bigint not null unique references raw.impressions (impression_id),
    redeemed_at   timestamptz not null,
    order_id      bigint references raw.orders (order_id)
);
comment on table raw.redemptions is 'One row per redeemed impression.';
comment on column raw.redemptions.redemption_id is 'Redemption key.';
comment on column raw.redemptions.impression_id is 'Impression that was redeemed (at most one redemption each).';
comment on column raw.redemptions.redeemed_at is 'When the offer was redeemed.';
comment on column raw.redemptions.order_id is 'Order the offer was redeemed in; NULL when the source system did not record it.';

create table if not exists raw.inventory_snapshots (
    snapshot_date date not null,
    product_id    bigint not null references raw.products (product_id),
    store_id      bigint not null references raw.stores (store_id),
    on_hand       numeric(14, 3) not null,
    primary key (snapshot_date, product_id, store_id)
);
comment on table raw.inventory_snapshots is 'Stock on hand per product and store at the end of a day, as counted by the stock system.';
comment on column raw.inventory_snapshots.snapshot_date is 'Day the stock was counted (end of day).';
comment on column raw.inventory_snapshots.product_id is 'Product.';
comment on column raw.inventory_snapshots.store_id is 'Store holding the stock.';
comment on column raw.inventory_snapshots.on_hand is 'Units on hand, in the unit raw.order_items.quantity sells them in (an amount to 3 decimals for goods sold by weight); below 0 where the stock system''s count ran below zero (sales booked before the delivery): read as nothing on hand.';

-- ---------------------------------------------------------------- load bookkeeping
create table if not exists raw.loads (
    load_id       bigint generated always as identity primary key,
    table_name    text not null,
    source_file   text not null,
    mode          text not null check (mode in ('append', 'upsert', 'replace')),
    all_or_nothing boolean not null default false,
    rows_in       bigint not null default 0,
    rows_loaded   bigint not null default 0,
    rows_rejected bigint not null default 0,
    started_at    timestamptz not null default now(),
    finished_at   timestamptz,
    status        text not null,
    message       text
);
-- v6: a load's row is committed before it starts; the backend that ran it tells a
-- killed load (backend gone) from one still running.
alter table raw.loads add column if not exists backend_pid integer;
alter table raw.loads add column if not exists backend_started_at timestamptz;
alter table raw.loads drop constraint if exists loads_status_check;
alter table raw.loads add constraint loads_status_check
    check (status in ('running', 'loaded', 'partial', 'rejected', 'failed', 'abandoned'));
comment on table raw.loads is 'One row per load of a file (or sample-data batch) into a raw table.';
comment on column raw.loads.load_id is 'Load key.';
comment on column raw.loads.table_name is 'Raw table loaded into, schema-qualified.';
comment on column raw.loads.source_file is 'File (or generator) the rows came from.';
comment on column raw.loads.mode is 'append (new keys only), upsert (insert or update by key) or replace (sample data).';
comment on column raw.loads.all_or_nothing is 'Whether the load was to load nothing if any row was rejected.';
comment on column raw.loads.rows_in is 'Data rows read from the file.';
comment on column raw.loads.rows_loaded is 'Rows inserted or updated in the table.';
comment on column raw.loads.rows_rejected is 'Rows written to raw.load_rejects instead.';
comment on column raw.loads.started_at is 'When the load started.';
comment on column raw.loads.finished_at is 'When the load finished; NULL while running or after a crash.';
comment on column raw.loads.status is 'running, loaded (all rows), partial (some rejected), rejected (nothing loaded because of rejects), failed (error; nothing loaded) or abandoned (the loading process died; nothing loaded).';
comment on column raw.loads.backend_pid is 'Server process that ran the load (to tell a killed load from a running one).';
comment on column raw.loads.backend_started_at is 'When that server process started (a pid can be reused).';
comment on column raw.loads.message is 'Summary or error message.';

create table if not exists raw.load_rejects (
    load_id     bigint not null references raw.loads (load_id),
    table_name  text not null,
    source_file text not null,
    line_no     bigint not null,
    raw_line    text not null,
    reason      text not null,
    rejected_at timestamptz not null default now(),
    primary key (load_id, line_no)
);
comment on table raw.load_rejects is 'One row per rejected input row, kept verbatim with the reason, so that nothing loaded is lost.';
comment on column raw.load_rejects.load_id is 'Load the row was part of.';
comment on column raw.load_rejects.table_name is 'Raw table the row was meant for.';
comment on column raw.load_rejects.source_file is 'File the row came from.';
comment on column raw.load_rejects.line_no is 'Line number in the file where the row starts (the header is line 1).';
comment on column raw.load_rejects.raw_line is 'The row as it stood in the file (undecodable bytes shown as \x escapes).';
comment on column raw.load_rejects.reason is 'Why the row was rejected, naming the column and what was expected.';
comment on column raw.load_rejects.rejected_at is 'When the row was rejected.';

-- v12: keys written as codes (SKU 85123A, store S01) under the coded_keys setting. The
-- loader gives each code a number of its own the first time the table it keys loads it
-- (products for product_id), and reads every other file's codes through this table.
create table if not exists raw.key_codes (
    key_column  text not null,
    code        text not null,
    key_value   bigint not null,
    first_load  bigint references raw.loads (load_id),
    primary key (key_column, code),
    unique (key_column, key_value)
);
comment on table raw.key_codes is 'One row per code of a coded key (setting coded_keys): the number the raw tables hold for it.';
comment on column raw.key_codes.key_column is 'The key the code is a value of: product_id, store_id, customer_id, ...';
comment on column raw.key_codes.code is 'The key as the files write it (SKU-123, 85123A, S01).';
comment on column raw.key_codes.key_value is 'The number the raw tables, features, scores and marts hold for the code; numbered from one past the highest key already loaded.';
comment on column raw.key_codes.first_load is 'The load that first numbered the code.';

-- ---------------------------------------------------------------- indexes for the feature layer
create index if not exists orders_customer_ordered_at_idx on raw.orders (customer_id, ordered_at);
create index if not exists orders_ordered_at_idx on raw.orders (ordered_at);
create index if not exists order_items_product_idx on raw.order_items (product_id);
create index if not exists impressions_customer_shown_at_idx on raw.impressions (customer_id, shown_at);
create index if not exists impressions_offer_idx on raw.impressions (offer_id);
create index if not exists promotions_product_dates_idx on raw.promotions (product_id, start_date, end_date);
-- The days out of stock (demand_stock_outs) among what may be years of daily counts.
create index if not exists inventory_snapshots_out_of_stock_idx
    on raw.inventory_snapshots (product_id, store_id, snapshot_date) where on_hand <= 0;

-- ---------------------------------------------------------------- model registry (ml)
create table if not exists ml.model_versions (
    model_name          text not null,
    version             integer not null check (version >= 1),
    status              text not null check (status in ('candidate', 'champion', 'retired')),
    status_reason       text,
    created_at          timestamptz not null default now(),
    trained_as_of       date not null,
    train_start         date not null,
    train_end           date not null,
    validation_start    date not null,
    validation_end      date not null,
    test_start          date not null,
    test_end            date not null,
    train_rows          bigint not null,
    validation_rows     bigint not null,
    test_rows           bigint not null,
    estimator           text not null,
    calibration         text,
    spec                jsonb not null,
    feature_columns     text[] not null,
    onnx                bytea not null,
    onnx_sha256         text not null,
    onnx_opset          integer not null,
    metrics             jsonb not null,
    baseline_metrics    jsonb not null,
    selection_metric    text not null,
    parity_max_abs_diff double precision not null,
    intervals           jsonb,
    sampling            jsonb not null,
    library_versions    jsonb not null,
    training_seconds    double precision not null,
    primary key (model_name, version)
);
comment on table ml.model_versions is 'One row per trained model version: the ONNX model, its spec and features, its metrics and status.';
comment on column ml.model_versions.model_name is 'Model, as named by its spec in training/specs/.';
comment on column ml.model_versions.version is 'Version number, 1, 2, ... per model.';
comment on column ml.model_versions.status is 'candidate (trained, not serving), champion (serving; at most one per model) or retired (served before).';
comment on column ml.model_versions.status_reason is 'Why the version has its status: the comparison with the champion, or who promoted it.';
comment on column ml.model_versions.created_at is 'When the version was registered.';
comment on column ml.model_versions.trained_as_of is 'Date the version was trained as of: only labels whose window had closed by then were read.';
comment on column ml.model_versions.train_start is 'First as-of date of the training window.';
comment on column ml.model_versions.train_end is 'Last as-of date of the training window.';
comment on column ml.model_versions.validation_start is 'First as-of date of the validation window (model selection, calibration, intervals).';
comment on column ml.model_versions.validation_end is 'Last as-of date of the validation window.';
comment on column ml.model_versions.test_start is 'First as-of date of the test window (reported metrics, champion comparison).';
comment on column ml.model_versions.test_end is 'Last as-of date of the test window.';
comment on column ml.model_versions.train_rows is 'Rows used for fitting (after any sampling).';
comment on column ml.model_versions.validation_rows is 'Rows in the validation window.';
comment on column ml.model_versions.test_rows is 'Rows in the test window.';
comment on column ml.model_versions.estimator is 'Candidate estimator that won selection.';
comment on column ml.model_versions.calibration is 'Probability calibration applied (sigmoid or isotonic); NULL for regression.';
comment on column ml.model_versions.spec is 'The model spec (training/specs/<name>.yml) the version was trained from.';
comment on column ml.model_versions.feature_columns is 'Feature columns in ONNX input order; scoring selects exactly these.';
comment on column ml.model_versions.onnx is 'The ONNX model: preprocessing, estimator and calibration in one graph.';
comment on column ml.model_versions.onnx_sha256 is 'SHA-256 of the ONNX bytes; scoring verifies it.';
comment on column ml.model_versions.onnx_opset is 'ONNX opset the model was exported with.';
comment on column ml.model_versions.metrics is 'Metrics of the version on the test window.';
comment on column ml.model_versions.baseline_metrics is 'Metrics of the spec''s baseline on the same test rows.';
comment on column ml.model_versions.selection_metric is 'Metric used to choose the estimator and to compare with the champion.';
comment on column ml.model_versions.parity_max_abs_diff is 'Largest difference between ONNX Runtime and scikit-learn predictions on the test rows.';
comment on column ml.model_versions.intervals is 'Split-conformal intervals (forecasts only): scaled residual quantiles per horizon bucket, level band and coverage level, series spreads, and the first as-of date of each validation fold.';
comment on column ml.model_versions.sampling is 'What was sampled to bound memory, if anything.';
comment on column ml.model_versions.library_versions is 'Versions of scikit-learn, skl2onnx, onnx, onnxruntime and numpy used.';
comment on column ml.model_versions.training_seconds is 'Wall time of training, selection, calibration and export.';

-- Schema version 5: features left out of a version because they were constant or NULL on
-- every training row (one product, no offers, ...). Scoring supplies the same columns.
alter table ml.model_versions add column if not exists dropped_features text[] not null default '{}';
-- v6: what a version was trained on, so that an unchanged training is not repeated.
alter table ml.model_versions add column if not exists fingerprint text;
comment on column ml.model_versions.fingerprint is 'SHA-256 of the spec, the feature table''s build settings and SQL, the storecast version and the matured training window (training.fingerprint): a training with the same one is skipped unless forced.';
comment on column ml.model_versions.dropped_features is 'Spec features left out of this version because they were constant or NULL on every training row.';

-- v7: matured-label backtests. When the label window of a scored date has closed, the
-- daily run joins the stored scores with the realised labels (storecast.scoring.backtests).
create table if not exists ml.backtests (
    model_name    text not null,
    model_version integer not null,
    as_of_date    date not null,
    horizon       integer not null default 0 check (horizon >= 0),
    metric        text not null,
    value         double precision,
    n_rows        bigint not null check (n_rows >= 0),
    run_id        bigint,
    computed_at   timestamptz not null default now(),
    primary key (model_name, model_version, as_of_date, horizon, metric),
    foreign key (model_name, model_version) references ml.model_versions (model_name, version)
);
comment on table ml.backtests is 'One row per model version x scored as-of date x horizon x metric: the stored scores of that date against the labels realised since (matured-label backtest).';
comment on column ml.backtests.model_name is 'Model, as named by its spec.';
comment on column ml.backtests.model_version is 'Version that made the scores.';
comment on column ml.backtests.as_of_date is 'Date the scores were made as of; its label window has closed.';
comment on column ml.backtests.horizon is 'Forecast horizon in periods (demand); 0 for all rows together and for models without horizons.';
comment on column ml.backtests.metric is 'Metric, named as in ml.model_versions.metrics (roc_auc, pr_auc, brier, wape, mase, bias, coverage_80, ...).';
comment on column ml.backtests.value is 'Value of the metric; NULL where it is undefined (e.g. AUC with one class).';
comment on column ml.backtests.n_rows is 'Scored rows with a realised label that the metric is computed on.';
comment on column ml.backtests.run_id is 'Daily run that computed the backtest (ml.pipeline_runs).';
comment on column ml.backtests.computed_at is 'When the backtest was computed.';

create table if not exists ml.backtest_reliability (
    model_name     text not null,
    model_version  integer not null,
    as_of_date     date not null,
    bin            integer not null check (bin between 1 and 10),
    mean_predicted double precision not null,
    observed_rate  double precision not null,
    n_rows         bigint not null check (n_rows > 0),
    primary key (model_name, model_version, as_of_date, bin),
    foreign key (model_name, model_version) references ml.model_versions (model_name, version)
);
comment on table ml.backtest_reliability is 'Reliability table of a classifier''s backtest: one row per model version x scored as-of date x probability bin (tenths).';
comment on column ml.backtest_reliability.model_name is 'Model, as named by its spec.';
comment on column ml.backtest_reliability.model_version is 'Version that made the scores.';
comment on column ml.backtest_reliability.as_of_date is 'Date the scores were made as of.';
comment on column ml.backtest_reliability.bin is 'Probability bin: 1 holds predictions in [0, 0.1), ..., 10 holds [0.9, 1].';
comment on column ml.backtest_reliability.mean_predicted is 'Mean predicted probability of the rows in the bin.';
comment on column ml.backtest_reliability.observed_rate is 'Share of those rows whose label turned out positive.';
comment on column ml.backtest_reliability.n_rows is 'Rows in the bin.';

-- v7: what the version's features and predictions looked like in training (storecast.training.drift).
alter table ml.model_versions add column if not exists drift_reference jsonb;
comment on column ml.model_versions.drift_reference is 'Training distribution of each feature (decile bins and shares, share of NULLs; top categories) and of the test predictions, for drift checks.';

create table if not exists ml.feature_drift (
    model_name      text not null,
    model_version   integer not null,
    as_of_date      date not null,
    feature         text not null,
    psi             double precision not null check (psi >= 0),
    test_psi        double precision not null default 0,
    null_share      double precision not null,
    reference_null_share double precision not null,
    n_rows          bigint not null,
    run_id          bigint,
    computed_at     timestamptz not null default now(),
    primary key (model_name, model_version, as_of_date, feature),
    foreign key (model_name, model_version) references ml.model_versions (model_name, version)
);
comment on table ml.feature_drift is 'One row per champion version x scored as-of date x feature (and "prediction"): how far the scored rows'' distribution has moved from the version''s training window.';
comment on column ml.feature_drift.model_name is 'Model.';
comment on column ml.feature_drift.model_version is 'Champion version whose training window is the reference.';
comment on column ml.feature_drift.as_of_date is 'Scored as-of date.';
comment on column ml.feature_drift.feature is 'Feature column, or "prediction" for the model''s output.';
comment on column ml.feature_drift.psi is 'Population stability index against the training distribution (deciles of training values, or top categories); above 0.25 is a shift.';
comment on column ml.feature_drift.test_psi is 'The largest PSI one of the version''s own test dates showed against training: a single date never looks like a window of many, so drift counts beyond this.';
comment on column ml.feature_drift.null_share is 'Share of the scored rows where the feature is NULL.';
comment on column ml.feature_drift.reference_null_share is 'The same share in the training rows.';
comment on column ml.feature_drift.n_rows is 'Scored rows measured.';
comment on column ml.feature_drift.run_id is 'Daily run that measured it.';
comment on column ml.feature_drift.computed_at is 'When it was measured.';

-- At most one champion per model: promotion and rollback are status changes.
create unique index if not exists model_versions_one_champion on ml.model_versions (model_name)
    where status = 'champion';

create table if not exists ml.calibration (
    model_name     text not null,
    version        integer not null,
    bin            integer not null check (bin between 1 and 10),
    predicted_mean double precision not null,
    observed_rate  double precision not null,
    rows           bigint not null,
    primary key (model_name, version, bin),
    foreign key (model_name, version) references ml.model_versions (model_name, version) on delete cascade
);
comment on table ml.calibration is 'Reliability table of each classifier version on its test window: 10 bins of predicted probability.';
comment on column ml.calibration.model_name is 'Model name.';
comment on column ml.calibration.version is 'Model version.';
comment on column ml.calibration.bin is 'Bin of predicted probability, 1 = [0, 0.1) ... 10 = [0.9, 1].';
comment on column ml.calibration.predicted_mean is 'Mean predicted probability in the bin.';
comment on column ml.calibration.observed_rate is 'Observed positive rate in the bin.';
comment on column ml.calibration.rows is 'Test rows in the bin.';

-- ---------------------------------------------------------------- scores (written by the scoring job)
-- Each score table is partitioned by as_of_date: scoring fills a new table and swaps it
-- in as that date's partition in one transaction (scoring/score.py), so rows are
-- written once and a rerun replaces the date's rows whole.
create or replace function ml.score_partition(score_table text, as_of date) returns text
    language sql stable parallel safe
    as $$ select score_table || '_' || to_char(as_of, 'YYYYMMDD') $$;
comment on function ml.score_partition(text, date) is
    'Name of the partition of scores.<score_table> that holds the rows of one as-of date.';

-- Schema version 4: score tables made before version 4 were not partitioned. Move them
-- aside here; their rows are moved into the partitioned tables below.
do $$
declare
    score_table text;
begin
    foreach score_table in array array['customer', 'offer_redemption', 'sell_through', 'demand_forecast'] loop
        if exists (
            select from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'scores' and c.relname = score_table and c.relkind = 'r'
        ) then
            execute format('alter table scores.%I rename to %I', score_table, score_table || '_v3');
            execute format('alter index scores.%I rename to %I', score_table || '_pkey', score_table || '_v3_pkey');
        end if;
    end loop;
end $$;

-- Schema version 5: customer score columns are named for what they hold, not for the
-- default horizons (the horizon is a setting, recorded with each model version).
do $$
begin
    if exists (
        select from information_schema.columns
        where table_schema = 'scores' and table_name = 'customer' and column_name = 'purchase_probability_30d'
    ) then
        -- Views on the table (dbt's staging view) name the old columns; `storecast build` recreates them.
        drop view if exists staging.stg_scores__customers cascade;
        alter table scores.customer rename column purchase_probability_30d to purchase_probability;
        alter table scores.customer rename column churn_probability_90d to churn_probability;
        alter table scores.customer rename column clv_365d to expected_spend;
    end if;
end $$;

create table if not exists scores.customer (
    as_of_date               date not null,
    customer_id              bigint not null,
    purchase_probability     double precision check (purchase_probability between 0 and 1),
    churn_probability        double precision check (churn_probability between 0 and 1),
    expected_spend           double precision,
    purchase_model_version   integer,
    churn_model_version      integer,
    clv_model_version        integer,
    run_id                   bigint not null,
    scored_at                timestamptz not null default now(),
    primary key (as_of_date, customer_id)
) partition by list (as_of_date);
comment on table scores.customer is 'One row per customer per scored as-of date: purchase, churn and lifetime-value predictions.';
comment on column scores.customer.as_of_date is 'As-of date scored; features use only events before it.';
comment on column scores.customer.customer_id is 'Customer.';
comment on column scores.customer.purchase_probability is 'Probability of an order within the purchase horizon from as_of_date (model purchase_30d; setting purchase_horizon_days, recorded with the model version).';
comment on column scores.customer.churn_probability is 'Probability of no order within the churn horizon from as_of_date (model churn_90d; setting churn_horizon_days).';
comment on column scores.customer.expected_spend is 'Predicted net spend within the lifetime-value horizon from as_of_date (model clv_365d; setting clv_horizon_days).';
comment on column scores.customer.purchase_model_version is 'Version of purchase_30d in ml.model_versions that scored the row.';
comment on column scores.customer.churn_model_version is 'Version of churn_90d that scored the row.';
comment on column scores.customer.clv_model_version is 'Version of clv_365d that scored the row.';
comment on column scores.customer.run_id is 'Pipeline run (ml.pipeline_runs) that wrote the row.';
comment on column scores.customer.scored_at is 'When the row was written.';

create table if not exists scores.offer_redemption (
    as_of_date    date not null,
    customer_id   bigint not null,
    offer_id      bigint not null,
    probability   double precision not null check (probability between 0 and 1),
    model_name    text not null,
    model_version integer not null,
    run_id        bigint not null,
    scored_at     timestamptz not null default now(),
    primary key (as_of_date, customer_id, offer_id)
) partition by list (as_of_date);
comment on table scores.offer_redemption is 'One row per candidate customer x offer per scored as-of date.';
comment on column scores.offer_redemption.as_of_date is 'As-of date scored.';
comment on column scores.offer_redemption.customer_id is 'Customer.';
comment on column scores.offer_redemption.offer_id is 'Offer.';
comment on column scores.offer_redemption.probability is 'Probability the customer redeems the offer within 7 days of seeing it.';
comment on column scores.offer_redemption.model_name is 'Model that scored the row.';
comment on column scores.offer_redemption.model_version is 'Its version in ml.model_versions.';
comment on column scores.offer_redemption.run_id is 'Pipeline run that wrote the row.';
comment on column scores.offer_redemption.scored_at is 'When the row was written.';

create table if not exists scores.sell_through (
    as_of_date    date not null,
    product_id    bigint not null,
    probability   double precision not null check (probability between 0 and 1),
    model_name    text not null,
    model_version integer not null,
    run_id        bigint not null,
    scored_at     timestamptz not null default now(),
    primary key (as_of_date, product_id)
) partition by list (as_of_date);
comment on table scores.sell_through is 'One row per item scored on an as-of date (items launched within the sell-through horizon or planned).';
comment on column scores.sell_through.as_of_date is 'As-of date of the scoring run.';
comment on column scores.sell_through.product_id is 'Item.';
comment on column scores.sell_through.probability is 'Probability the item sells the target share of its initial stock within the horizon.';
comment on column scores.sell_through.model_name is 'Model that scored the row.';
comment on column scores.sell_through.model_version is 'Its version in ml.model_versions.';
comment on column scores.sell_through.run_id is 'Pipeline run that wrote the row.';
comment on column scores.sell_through.scored_at is 'When the row was written.';

create table if not exists scores.demand_forecast (
    as_of_date    date not null,
    product_id    bigint not null,
    store_id      bigint not null,
    horizon       integer not null check (horizon >= 1),
    target_date   date not null,
    units         double precision not null,
    lower_80      double precision not null,
    upper_80      double precision not null,
    lower_95      double precision not null,
    upper_95      double precision not null,
    model_name    text not null,
    model_version integer not null,
    run_id        bigint not null,
    scored_at     timestamptz not null default now(),
    primary key (as_of_date, product_id, store_id, horizon),
    check (lower_95 <= lower_80 and lower_80 <= units and units <= upper_80 and upper_80 <= upper_95)
) partition by list (as_of_date);
comment on table scores.demand_forecast is 'One row per product x store x horizon per scored as-of date: units with split-conformal intervals.';
comment on column scores.demand_forecast.as_of_date is 'As-of date scored.';
comment on column scores.demand_forecast.product_id is 'Product.';
comment on column scores.demand_forecast.store_id is 'Store.';
comment on column scores.demand_forecast.horizon is 'Periods ahead (1 = the as-of date itself).';
comment on column scores.demand_forecast.target_date is 'Date (or week start) forecast.';
comment on column scores.demand_forecast.units is 'Point forecast of units.';
comment on column scores.demand_forecast.lower_80 is 'Lower bound of the 80 % interval.';
comment on column scores.demand_forecast.upper_80 is 'Upper bound of the 80 % interval.';
comment on column scores.demand_forecast.lower_95 is 'Lower bound of the 95 % interval.';
comment on column scores.demand_forecast.upper_95 is 'Upper bound of the 95 % interval.';
comment on column scores.demand_forecast.model_name is 'Model that scored the row.';
comment on column scores.demand_forecast.model_version is 'Its version in ml.model_versions.';
comment on column scores.demand_forecast.run_id is 'Pipeline run that wrote the row.';
comment on column scores.demand_forecast.scored_at is 'When the row was written.';

do $$
declare
    score_table text;
    as_of date;
begin
    foreach score_table in array array['customer', 'offer_redemption', 'sell_through', 'demand_forecast'] loop
        if to_regclass(format('scores.%I', score_table || '_v3')) is not null then
            for as_of in execute format('select distinct as_of_date from scores.%I', score_table || '_v3') loop
                execute format(
                    'create table scores.%I partition of scores.%I for values in (%L)',
                    ml.score_partition(score_table, as_of), score_table, as_of
                );
            end loop;
            execute format('insert into scores.%I select * from scores.%I', score_table, score_table || '_v3');
            -- Views on the old table (dbt's staging views) go with it; `storecast build` recreates them.
            raise notice 'scores.% is now partitioned by as_of_date; views on it were dropped: run storecast build', score_table;
            execute format('drop table scores.%I cascade', score_table || '_v3');
        end if;
    end loop;
end $$;

-- ---------------------------------------------------------------- pipeline run log
create sequence if not exists ml.run_ids;
comment on sequence ml.run_ids is 'Run ids for ml.pipeline_runs.';

create table if not exists ml.pipeline_runs (
    run_id      bigint not null,
    as_of_date  date,
    step        text not null,
    status      text not null,
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    rows        bigint,
    counters    jsonb not null default '{}',
    message     text,
    primary key (run_id, step)
);
-- v6: the backend that ran a step tells a step whose process died from one still running.
alter table ml.pipeline_runs add column if not exists backend_pid integer;
alter table ml.pipeline_runs add column if not exists backend_started_at timestamptz;
alter table ml.pipeline_runs drop constraint if exists pipeline_runs_status_check;
alter table ml.pipeline_runs add constraint pipeline_runs_status_check
    check (status in ('running', 'succeeded', 'failed', 'skipped', 'abandoned'));
comment on table ml.pipeline_runs is 'One row per step of each pipeline run (build, train, score, marts): status, timing, rows and health counters.';
comment on column ml.pipeline_runs.run_id is 'Run id (from ml.run_ids).';
comment on column ml.pipeline_runs.as_of_date is 'As-of date the run was for.';
comment on column ml.pipeline_runs.step is 'Step name, e.g. score:customer.';
comment on column ml.pipeline_runs.status is 'running, succeeded, failed, skipped or abandoned (its process died; found by a later command).';
comment on column ml.pipeline_runs.backend_pid is 'Server process of the session that ran the step.';
comment on column ml.pipeline_runs.backend_started_at is 'When that server process started (a pid can be reused).';
comment on column ml.pipeline_runs.started_at is 'When the step started.';
comment on column ml.pipeline_runs.finished_at is 'When it ended; NULL while running or after a crash.';
comment on column ml.pipeline_runs.rows is 'Rows the step wrote.';
comment on column ml.pipeline_runs.counters is 'Health counters, e.g. candidate pairs, rows scored per model, rows per second.';
comment on column ml.pipeline_runs.message is 'Error or summary message.';

-- ---------------------------------------------------------------- settings of the last feature build
create table if not exists ml.build_settings (
    model      text primary key,
    settings   jsonb not null,
    sql_sha256 text,
    built_at   timestamptz not null default now()
);
comment on table ml.build_settings is 'For each incremental feature table, the settings (dbt vars) that shape its rows and a digest of its SQL, as of its last successful build: a build with changed SQL or other values of the settings that shape a row (all but the history lengths, which only add or drop as-of dates) rebuilds the table from scratch.';
comment on column ml.build_settings.model is 'dbt model (table in schema features).';
comment on column ml.build_settings.settings is 'The vars the model reads, directly or through its upstream models and macros, and their values (all but the scoring date, as_of_date).';
-- (added while version 5 was being written; a no-op on a database made from this file)
alter table ml.build_settings add column if not exists sql_sha256 text;
comment on column ml.build_settings.sql_sha256 is 'SHA-256 of the SQL of the model, the macros it calls and its upstream models at that build.';
comment on column ml.build_settings.built_at is 'When that build finished.';

-- ---------------------------------------------------------------- read-only role for analysts and BI
-- dbt builds the marts schema; it is created here so its grants exist from the start.
create schema if not exists marts;
do $$
begin
    if not exists (select from pg_roles where rolname = 'storecast_analyst') then
        create role storecast_analyst nologin;
    end if;
end $$;
comment on role storecast_analyst is 'Read-only access to marts and scores. Grant it to a login: grant storecast_analyst to alice;';
grant usage on schema scores, marts to storecast_analyst;
grant select on all tables in schema scores, marts to storecast_analyst;
-- v8: explanations (storecast.training.explain): the explainer of each version, and the
-- top reasons of each score row beside its score.
alter table ml.model_versions add column if not exists explainer bytea;
comment on column ml.model_versions.explainer is 'Explainer of the version: its preprocessing as ONNX, with the linear coefficients or the trees'' node values in the file''s metadata (storecast.training.explain).';
alter table scores.customer add column if not exists purchase_reasons jsonb;
alter table scores.customer add column if not exists churn_reasons jsonb;
alter table scores.customer add column if not exists clv_reasons jsonb;
alter table scores.offer_redemption add column if not exists reasons jsonb;
alter table scores.sell_through add column if not exists reasons jsonb;
alter table scores.demand_forecast add column if not exists reasons jsonb;
comment on column scores.customer.purchase_reasons is 'Top reasons for purchase_probability: [{feature, value, contribution, direction}], contributions to the log-odds before calibration (NULL: a version without an explainer, or explanation_reasons 0).';
comment on column scores.customer.churn_reasons is 'Top reasons for churn_probability, as purchase_reasons.';
comment on column scores.customer.clv_reasons is 'Top reasons for expected_spend: contributions to the model''s raw score (the log of the mean for log-link models).';
comment on column scores.offer_redemption.reasons is 'Top reasons for probability: [{feature, value, contribution, direction}], contributions to the log-odds before calibration.';
comment on column scores.sell_through.reasons is 'Top reasons for probability: [{feature, value, contribution, direction}], contributions to the log-odds before calibration.';
comment on column scores.demand_forecast.reasons is 'Top reasons for units: [{feature, value, contribution, direction}], contributions to the model''s raw score (units, their log, or log1p by loss).';

alter default privileges in schema scores grant select on tables to storecast_analyst;
alter default privileges in schema marts grant select on tables to storecast_analyst;

-- ---------------------------------------------------------------- v9: overrides and the service role
-- A person's correction of a label or a projection, kept with its history: nothing is
-- updated or deleted, the latest row per key applies, a NULL value withdraws it. The
-- feature layer applies them where labels are built (stg_raw__overrides and the models
-- that read it), and marks the rows it changed.
create table if not exists raw.overrides (
    override_id  bigint generated always as identity primary key,
    kind         text not null check (kind in ('sell_through', 'demand')),
    product_id   bigint not null references raw.products (product_id),
    store_id     bigint references raw.stores (store_id),
    period_start date,
    value        double precision check (value >= 0),
    author       text not null check (length(trim(author)) > 0),
    reason       text not null check (length(trim(reason)) > 0),
    recorded_at  timestamptz not null default now(),
    constraint overrides_keys_fit_kind check (
        (kind = 'sell_through' and store_id is null and period_start is null and (value is null or value in (0, 1)))
        or (kind = 'demand' and store_id is not null and period_start is not null)
    )
);
create index if not exists overrides_key on raw.overrides (kind, product_id, store_id, period_start, recorded_at);
comment on table raw.overrides is 'Overrides of labels and projections by people, with history: the latest row per (kind, product, store, period) applies; a NULL value withdraws the override.';
comment on column raw.overrides.override_id is 'Override key, in the order they were recorded.';
comment on column raw.overrides.kind is 'sell_through: whether an item sells through (value 1 or 0); demand: units of a product in a store in the demand period holding period_start.';
comment on column raw.overrides.product_id is 'Product (item) the override is about.';
comment on column raw.overrides.store_id is 'Store, for demand overrides; NULL for sell_through.';
comment on column raw.overrides.period_start is 'A day of the demand period overridden (the period holding it, at demand_grain); NULL for sell_through.';
comment on column raw.overrides.value is 'The overriding value: 1 or 0 for sell_through, units for demand; NULL withdraws an earlier override of the same key.';
comment on column raw.overrides.author is 'Who recorded it.';
comment on column raw.overrides.reason is 'Why.';
comment on column raw.overrides.recorded_at is 'When it was recorded.';

-- The HTTP service's own writes (uploads, overrides) run as this role: it may add and
-- update raw rows and record loads and overrides, never delete, truncate or alter them.
do $$
begin
    if not exists (select from pg_roles where rolname = 'storecast_service') then
        create role storecast_service nologin;
    end if;
end $$;
comment on role storecast_service is 'What storecast serve writes with for uploads and overrides: insert and update on raw tables, nothing else. Grant it to the login the service connects as.';
grant usage on schema raw to storecast_service;
grant select, insert, update on all tables in schema raw to storecast_service;
revoke update on raw.overrides, raw.schema_versions from storecast_service;
revoke insert on raw.schema_versions from storecast_service;
grant usage on all sequences in schema raw to storecast_service;
alter table ml.model_versions add column if not exists overridden_labels bigint;
comment on column ml.model_versions.overridden_labels is 'Rows of the training, validation and test windows whose label came from an override (raw.overrides) rather than the data; NULL for a feature table without overrides.';

-- ---------------------------------------------------------------- v11: product and store keys as bigint
-- Retailers key products by their barcode (a GTIN: EAN-13 and UPC-A numbers pass
-- integer's 2,147,483,647) and stores, promotions and offers by codes of their own; the
-- keys were integer before version 11. The feature and mart tables built from them
-- change too (an incremental build only appends to a feature table). dbt's staging views
-- read these columns, so they go first; `storecast build` creates them again.
do $$
declare
    key record;
    staging_view text;
begin
    if exists (
        select from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('raw', 'scores', 'features', 'marts') and c.relkind in ('r', 'p') and not a.attisdropped
            and a.attname in ('product_id', 'store_id', 'promotion_id', 'offer_id')
            and a.atttypid = 'integer'::regtype
    ) then
        for staging_view in select table_name from information_schema.views where table_schema = 'staging' loop
            execute format('drop view if exists staging.%I cascade', staging_view);
        end loop;
        for key in
            select n.nspname as schema_name, c.relname as table_name, a.attname as column_name
            from pg_attribute a
            join pg_class c on c.oid = a.attrelid
            join pg_namespace n on n.oid = c.relnamespace
            -- A partition follows its partitioned table, and cannot be altered on its own.
            where n.nspname in ('raw', 'scores', 'features', 'marts') and c.relkind in ('r', 'p') and not c.relispartition
                and not a.attisdropped
                and a.attname in ('product_id', 'store_id', 'promotion_id', 'offer_id')
                and a.atttypid = 'integer'::regtype
        loop
            execute format('alter table %I.%I alter column %I type bigint', key.schema_name, key.table_name, key.column_name);
        end loop;
    end if;
end $$;

-- ---------------------------------------------------------------- v14: amounts, not only counts
-- A grocer sells fruit by the kilogram and a hardware store rope by the metre: quantities
-- and stock counts were whole numbers before version 14. dbt's staging views read these
-- columns, so they go first; `storecast build` creates them again.
do $$
declare
    staging_view text;
begin
    if exists (
        select from information_schema.columns
        where table_schema = 'raw'
            and (table_name, column_name) in (('order_items', 'quantity'), ('inventory_snapshots', 'on_hand'))
            and data_type = 'integer'
    ) then
        for staging_view in select table_name from information_schema.views where table_schema = 'staging' loop
            execute format('drop view if exists staging.%I cascade', staging_view);
        end loop;
        alter table raw.order_items alter column quantity type numeric(14, 3);
        alter table raw.inventory_snapshots alter column on_hand type numeric(14, 3);
        -- Neither keeps a check: v17 and v18 below drop them.
    end if;
end $$;

-- ---------------------------------------------------------------- v17: returns among the sales
-- An online shop's export holds its returns as lines of negative quantity. They were
-- rejected, and a customer's spend was what they bought, not what they kept. Now they load;
-- the features net them from spend and leave them out of demand.
alter table raw.order_items drop constraint if exists order_items_quantity_check;

-- ---------------------------------------------------------------- v18: stock counts below zero
-- A perpetual-inventory system counts below zero when a sale is booked before the delivery
-- that stocked it. Such counts were rejected, and the day read as not counted (in stock).
-- Now they load; the stock-outs and the inventory plan read them as nothing on hand.
alter table raw.inventory_snapshots drop constraint if exists inventory_snapshots_on_hand_check;

insert into raw.schema_versions (version, description)
values (1, 'raw schema: stores, customers, products, embeddings, orders, promotions, offers, loads')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (2, 'ml.model_versions and ml.calibration: the model registry')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (3, 'raw.inventory_snapshots, scores tables, ml.pipeline_runs, the storecast_analyst role')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (4, 'scores tables partitioned by as_of_date; ml.score_partition')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (5, 'customer score columns without horizons; ml.model_versions.dropped_features; ml.build_settings')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (6, 'abandoned loads and pipeline steps (backend of raw.loads and ml.pipeline_runs rows); ml.model_versions.fingerprint')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (7, 'ml.backtests, ml.backtest_reliability, ml.feature_drift and ml.model_versions.drift_reference: monitoring')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (8, 'ml.model_versions.explainer and the reasons columns of the score tables: explanations')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (9, 'raw.overrides (labels and projections overridden by people, with history), ml.model_versions.overridden_labels and the storecast_service role')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (10, 'raw.order_items.quantity may be 0: an observed period without a sale')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (11, 'product, store, promotion and offer keys as bigint (barcodes, store codes)')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (12, 'raw.key_codes: keys written as codes (setting coded_keys)')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (13, 'product brand, platform, unit cost, launch date and initial stock, store region, format and opening date, customer signup date, region and segment, and order store and channel may be NULL (not known)')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (14, 'raw.order_items.quantity and raw.inventory_snapshots.on_hand as amounts to 3 decimals (goods sold by weight or length)')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (15, 'raw.promotions.discount_pct may be 0, its default: a promotion without a price cut (a feature ad or a display); raw.products.list_price may be NULL (not known)')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (16, 'raw.shelf_prices: shelf prices set ahead (a price list or plan), read by the demand forecast for its target period')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (17, 'raw.order_items.quantity may be negative: a return, netted from its customer''s spend')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (18, 'raw.inventory_snapshots.on_hand may be negative: a stock system''s count run below zero, read as nothing on hand')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (19, 'raw.calendar_events: the retailer''s calendar of events, read by the demand forecast for its target period')
on conflict (version) do nothing;
insert into raw.schema_versions (version, description)
values (20, 'raw.store_calendar_events: events of one store, read by its demand forecasts beside the chain''s calendar')
on conflict (version) do nothing;
