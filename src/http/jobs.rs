//! Job queues over HTTP (docs/services.md#job-queues): enqueue (201, or 200 with `duplicate` for a `jobId`
//! already there) one job or a bulk of them, claim (a long poll with `wait`), complete (with
//! an optional `next` claim) / fail / extend under the claim's lease (409 `not_holder`
//! otherwise), a job, stats, and the dead letters.

use super::tenant::Scoped;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::waits::Waiter;
use crate::domain::jobs::{Claim, NewJob, NewJobs, Settle};
use crate::domain::FieldProblem;
use crate::service::jobs::{Jobs, Outcome};
use crate::store::Cursor;

#[utoipa::path(post, path = "/api/queues/{queue}/jobs", tag = "services", operation_id = "enqueueJob", params(("queue" = String, Path, description = "The queue name")), request_body = NewJob, responses((status = 201, description = "`{success, duplicate:false, job}`", body = Object), (status = 200, description = "`duplicate:true`: the job already there under that `jobId`", body = Object), super::openapi::Errors))]
pub async fn enqueue(
    Scoped(jobs): Scoped<Jobs>,
    ApiPath(queue): ApiPath<String>,
    ApiJson(body): ApiJson<NewJob>,
) -> Result<Response, ApiError> {
    let (created, job) = jobs.enqueue(&queue, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = Enqueued {
        success: true,
        duplicate: !created,
        job: job.raw(&queue, false),
    };
    Ok((status, Json(body)).into_response())
}

// The answers of the busy routes, their jobs written as JSON text (`JobView::raw`).

#[derive(Serialize)]
struct Enqueued {
    success: bool,
    duplicate: bool,
    job: Box<RawValue>,
}

#[derive(Serialize)]
struct ClaimAnswer<'a> {
    queue: &'a str,
    count: usize,
    jobs: Vec<Box<RawValue>>,
}

#[derive(Serialize)]
struct SettleAnswer {
    success: bool,
    job: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Vec<Box<RawValue>>>,
}

/// 201 when at least one job is new, 200 when every one was there already.
#[utoipa::path(post, path = "/api/queues/{queue}/bulk", tag = "services", operation_id = "enqueueJobs", params(("queue" = String, Path, description = "The queue name")), request_body = NewJobs, responses((status = 201, description = "`{success, count, jobs}`", body = Object), super::openapi::Errors))]
pub async fn enqueue_bulk(
    Scoped(jobs): Scoped<Jobs>,
    ApiPath(queue): ApiPath<String>,
    ApiJson(body): ApiJson<NewJobs>,
) -> Result<Response, ApiError> {
    let each = jobs.enqueue_bulk(&queue, body).await?;
    let created = each.iter().filter(|(new, _)| *new).count();
    let list: Vec<_> = each
        .iter()
        .map(|(new, job)| {
            let mut v = job.render(&queue, false);
            v["duplicate"] = json!(!new);
            v
        })
        .collect();
    let status = if created > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = json!({
        "success": true,
        "count": list.len(),
        "created": created,
        "duplicates": list.len() - created,
        "jobs": list,
    });
    Ok((status, Json(body)).into_response())
}

#[utoipa::path(post, path = "/api/queues/{queue}/claim", tag = "services", operation_id = "claimJobs", params(("queue" = String, Path, description = "The queue name")), request_body = Claim, responses((status = 200, description = "`{queue, count, jobs}`, each with its lease", body = Object), super::openapi::Errors))]
pub async fn claim(
    Scoped(jobs): Scoped<Jobs>,
    waiter: Waiter,
    ApiPath(queue): ApiPath<String>,
    ApiJson(body): ApiJson<Claim>,
) -> Result<Response, ApiError> {
    let _slot = waiter.park(body.wait.is_some_and(|w| w > 0.0))?;
    let claimed = jobs.claim(&queue, body).await?;
    let list: Vec<_> = claimed.iter().map(|j| j.raw(&queue, true)).collect();
    let body = ClaimAnswer {
        queue: &queue,
        count: list.len(),
        jobs: list,
    };
    Ok(Json(body).into_response())
}

async fn settle(
    jobs: &Jobs,
    queue: &str,
    id: &str,
    op: &str,
    body: Settle,
) -> Result<Response, ApiError> {
    let next_asked = body.next.is_some();
    Ok(match jobs.settle(queue, id, op, body).await? {
        Outcome::Done(job, next) => Json(SettleAnswer {
            success: true,
            job: job.raw(queue, op == "extend"),
            next: next_asked.then(|| next.iter().map(|j| j.raw(queue, true)).collect()),
        })
        .into_response(),
        Outcome::NotHolder => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_holder",
                format!("job {id} is not active under this lease (it expired, was re-claimed or settled); nothing was changed"),
            ))
        }
    })
}

#[utoipa::path(post, path = "/api/queues/{queue}/jobs/{id}/complete", tag = "services", operation_id = "completeJob", params(("queue" = String, Path, description = "The queue name"), ("id" = String, Path, description = "The job id")), request_body = Settle, responses((status = 200, description = "`{success, job, next?}`", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), (status = 409, description = "Not the lease holder (`not_holder`)", body = Object), super::openapi::Errors))]
pub async fn complete(
    Scoped(jobs): Scoped<Jobs>,
    waiter: Waiter,
    ApiPath((queue, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Settle>,
) -> Result<Response, ApiError> {
    let waits = body
        .next
        .as_ref()
        .and_then(|n| n.wait)
        .is_some_and(|w| w > 0.0);
    let _slot = waiter.park(waits)?;
    settle(&jobs, &queue, &id, "complete", body).await
}

#[utoipa::path(post, path = "/api/queues/{queue}/jobs/{id}/fail", tag = "services", operation_id = "failJob", params(("queue" = String, Path, description = "The queue name"), ("id" = String, Path, description = "The job id")), request_body = Settle, responses((status = 200, description = "`{success, job}`: retried later or dead", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), (status = 409, description = "Not the lease holder (`not_holder`)", body = Object), super::openapi::Errors))]
pub async fn fail(
    Scoped(jobs): Scoped<Jobs>,
    ApiPath((queue, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Settle>,
) -> Result<Response, ApiError> {
    settle(&jobs, &queue, &id, "fail", body).await
}

#[utoipa::path(post, path = "/api/queues/{queue}/jobs/{id}/extend", tag = "services", operation_id = "extendJob", params(("queue" = String, Path, description = "The queue name"), ("id" = String, Path, description = "The job id")), request_body = Settle, responses((status = 200, description = "`{success, job}` with its new lease", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), (status = 409, description = "Not the lease holder (`not_holder`)", body = Object), super::openapi::Errors))]
pub async fn extend(
    Scoped(jobs): Scoped<Jobs>,
    ApiPath((queue, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Settle>,
) -> Result<Response, ApiError> {
    settle(&jobs, &queue, &id, "extend", body).await
}

#[utoipa::path(get, path = "/api/queues/{queue}/jobs/{id}", tag = "services", operation_id = "getJob", params(("queue" = String, Path, description = "The queue name"), ("id" = String, Path, description = "The job id")), responses((status = 200, description = "The job", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn get(
    Scoped(jobs): Scoped<Jobs>,
    ApiPath((queue, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let job = jobs.job(&queue, &id).await?;
    Ok(Json(json!({"job": job.render(&queue, false)})).into_response())
}

#[utoipa::path(get, path = "/api/queues/{queue}/stats", tag = "services", operation_id = "jobStats", params(("queue" = String, Path, description = "The queue name")), responses((status = 200, description = "`{queue, waiting, delayed, active, completed, failed, dead}`", body = Object), super::openapi::Errors))]
pub async fn stats(
    Scoped(jobs): Scoped<Jobs>,
    ApiPath(queue): ApiPath<String>,
) -> Result<Response, ApiError> {
    let s = jobs.stats(&queue).await?;
    Ok(Json(json!({
        "queue": queue,
        "waiting": s.waiting,
        "delayed": s.delayed,
        "active": s.active,
        "completed": s.completed,
        "failed": s.failed,
        "dead": s.dead,
    }))
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Dead jobs per page unless `limit` says otherwise, and the most.
const DEAD_LIMIT: (usize, usize) = (100, 1000);

/// The dead letters newest first, a page at a time: at most `limit`, and at most
/// `READ_MAX_BYTES` of jobs (at least one), with `nextCursor` while more remain.
#[utoipa::path(get, path = "/api/queues/{queue}/dead", tag = "services", operation_id = "deadJobs", params(("queue" = String, Path, description = "The queue name"), DeadQuery), responses((status = 200, description = "The dead letters, newest first", body = Object), super::openapi::Errors))]
pub async fn dead(
    Scoped(jobs): Scoped<Jobs>,
    ApiPath(queue): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeadQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(DEAD_LIMIT.0);
    if !(1..=DEAD_LIMIT.1).contains(&limit) {
        return Err(ApiError::validation(vec![FieldProblem::new(
            "limit",
            format!("must be between 1 and {}", DEAD_LIMIT.1),
        )]));
    }
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(Cursor::decode(c).ok_or_else(|| {
            ApiError::validation(vec![FieldProblem::new(
                "cursor",
                "is not a cursor this route gave",
            )])
        })?),
    };
    let (page, next) = jobs.dead(&queue, limit, after.as_ref()).await?;
    let list: Vec<_> = page.iter().map(|j| j.raw(&queue, false)).collect();
    Ok(Json(DeadPage {
        queue: &queue,
        count: list.len(),
        jobs: list,
        next_cursor: next.map(|c| c.encode()),
    })
    .into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadPage<'a> {
    queue: &'a str,
    count: usize,
    jobs: Vec<Box<RawValue>>,
    next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/api/queues/{queue}/dead/{id}/retry", tag = "services", operation_id = "retryDeadJob", params(("queue" = String, Path, description = "The queue name"), ("id" = String, Path, description = "The job id")), responses((status = 200, description = "The job, waiting again", body = Object), (status = 404, description = "No such thing (`not_found`)", body = Object), super::openapi::Errors))]
pub async fn retry_dead(
    Scoped(jobs): Scoped<Jobs>,
    ApiPath((queue, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let job = jobs.retry_dead(&queue, &id).await?;
    Ok(Json(json!({"success": true, "job": job.render(&queue, false)})).into_response())
}
