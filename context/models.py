"""Context sources bound to agents in the admin, and what each run was given."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

ENV_NAME = RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "The name of an environment variable, e.g. SLACK_TOKEN.")


class ContextSource(models.Model):
    """A source an operator binds to an agent without a deploy: a registered provider class
    with its parameters, options and a reference to its credential."""

    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="context_sources")
    name = models.SlugField(max_length=63, help_text="How the source is labelled in the prompt and the record.")
    provider = models.CharField(max_length=200, help_text="A registered provider class, by import path.")
    parameters = models.JSONField(default=dict, blank=True, help_text="The provider's own arguments, as JSON.")
    enabled = models.BooleanField(default=True)
    required = models.BooleanField(default=False, help_text="If it fails, the run fails (instead of going without).")
    position = models.PositiveIntegerField(default=0, help_text="Order in the prompt (after the code's sources).")
    timeout_seconds = models.FloatField(default=10.0, validators=[MinValueValidator(0.1), MaxValueValidator(300)])
    max_chars = models.PositiveIntegerField(
        default=8000, validators=[MinValueValidator(100)], help_text="Budget of the rendered items, in characters."
    )
    cache_ttl_seconds = models.PositiveIntegerField(default=0, help_text="Reuse a fetch this long (0: every run).")
    credential_env = models.CharField(
        max_length=100, blank=True, validators=[ENV_NAME], help_text="The credential's environment variable."
    )
    credential_encrypted = models.TextField(blank=True, editable=False, help_text="A stored credential (Fernet).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["agent", "position", "name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="context_source_unique_name_per_agent")]

    def __str__(self) -> str:
        return f"{self.agent.name}: {self.name}"

    @property
    def credential_kind(self) -> str:
        """ "env", "stored" or "" (never the value)."""
        if self.credential_env:
            return "env"
        return "stored" if self.credential_encrypted else ""


class Origin(models.TextChoices):
    CODE = "code"  # Agent(context=[...])
    ADMIN = "admin"  # a ContextSource row


class InjectionStatus(models.TextChoices):
    OK = "ok"
    FAILED = "failed"  # an optional source that failed: skipped (a required one fails the run)


class ContextInjection(models.Model):
    """One source's part in one run: what was injected, from where, how fast."""

    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="context_injections")
    position = models.PositiveIntegerField(help_text="Order in the prompt.")
    source = models.CharField(max_length=100)
    kind = models.CharField(max_length=50, help_text="The provider's type: slack, mcp, http, ...")
    origin = models.CharField(max_length=10, choices=Origin.choices)
    source_row = models.ForeignKey(ContextSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=InjectionStatus.choices)
    required = models.BooleanField(default=False)
    item_count = models.PositiveIntegerField(default=0, help_text="Items fetched.")
    items_shown = models.PositiveIntegerField(default=0, help_text="Items that fit the budget.")
    chars = models.PositiveIntegerField(default=0, help_text="Characters injected into the prompt.")
    truncated = models.BooleanField(default=False)
    fetch_ms = models.PositiveIntegerField(default=0)
    cache_hit = models.BooleanField(default=False)
    fetched_at = models.DateTimeField(null=True, blank=True, help_text="When the data was fetched (cached or not).")
    error = models.TextField(blank=True, help_text="Why the fetch failed (credentials removed).")
    tools = models.JSONField(default=list, blank=True, help_text="Tools the source offered the run.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="context_injection_unique_position")]

    def __str__(self) -> str:
        return f"{self.source} ({self.status})"
