"""LeadScore for Slate: weekly lead-propensity scoring for admissions offices running Technolutions Slate."""

__version__ = "0.1.0"
