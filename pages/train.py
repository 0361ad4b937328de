"""train page."""
import streamlit as st

st.title("Train")
st.warning("This page is being built.")
